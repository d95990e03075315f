"""The opt-in fast trainer's network: d2l's LeNet family rebuilt from :mod:`lenet_utils.fastops`.

``fit(..., fast=True)`` (``train --fast``, ``bench --fast``) trains a *view* of the network in
which the supported layers are replaced by fused CPU operators sharing the same parameters:

* a first block ``Conv2d(1, c, k, padding=p)`` + sigmoid/tanh/ReLU + 2x2 average/max pooling
  -> :class:`~lenet_utils.fastops.PolyC1Block`;
* every other stride-1 ``Conv2d`` -> :class:`~lenet_utils.fastops.HConv2d`;
* ``Sigmoid`` followed by ``AvgPool2d(k, k)`` -> :class:`~lenet_utils.fastops.SigmoidAvgPool`.

Anything else (another architecture, CUDA, float64, a network that is not an ``nn.Sequential``,
or a view whose first outputs and gradients disagree with the plain network's) falls back to
the plain network, and :func:`train_module` says so.

**Numerics.** The fused operators sum in another order than the plain layers: the same function
to rounding, not the same bits (``tests/test_fastnet.py`` shows both). A run trained this way
carries :data:`FAST_NUMERICS` instead of :data:`lenet_utils.engine.NUMERICS` in its versions,
and ``fast: True`` in its settings, so it is never resumed or reused as a plain run.
"""

from __future__ import annotations

import torch
from torch import nn

from .fastops import ACTIVATIONS, HConv2d, PolyC1Block, SigmoidAvgPool

__all__ = ["FAST_NUMERICS", "agrees", "fast_view", "train_module"]

#: the numerics of runs trained with ``fast=True`` (plain runs: :data:`lenet_utils.engine.NUMERICS`).
FAST_NUMERICS = 2


def _is_pool2(m: nn.Module) -> bool:
    """A 2x2, stride-2, unpadded average or max pooling."""
    if type(m) is nn.AvgPool2d:
        return (m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) and m.padding in (0, (0, 0))
                and not m.ceil_mode and m.divisor_override is None)  # fmt: skip
    if type(m) is nn.MaxPool2d:
        return (m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) and m.padding in (0, (0, 0))
                and not m.ceil_mode and m.dilation in (1, (1, 1)) and not m.return_indices)  # fmt: skip
    return False


def _poly_head(mods: list[nn.Module]) -> PolyC1Block | None:
    """The fused first block when ``mods`` starts with Conv2d(1, ...) + activation + 2x2 pool."""
    if len(mods) < 3:
        return None
    conv, act, pool = mods[:3]
    if not (HConv2d.supports(conv) and conv.in_channels == 1 and conv.bias is not None):
        return None
    if conv.kernel_size[0] != conv.kernel_size[1] or type(act) not in ACTIVATIONS or not _is_pool2(pool):
        return None
    return PolyC1Block(conv, ACTIVATIONS[type(act)], "avg" if type(pool) is nn.AvgPool2d else "max")


def _sigmoid_pool(m: nn.Module, nxt: nn.Module | None) -> SigmoidAvgPool | None:
    """The fused op when ``m`` is a Sigmoid and ``nxt`` an unpadded ``AvgPool2d(k, k)``."""
    if type(m) is not nn.Sigmoid or type(nxt) is not nn.AvgPool2d:
        return None
    k = nxt.kernel_size
    if not isinstance(k, int) or nxt.stride != k or nxt.padding != 0 or nxt.ceil_mode or nxt.divisor_override:
        return None
    return SigmoidAvgPool(k)


def fast_view(net: nn.Module) -> nn.Sequential | None:
    """``net`` rebuilt with the fused operators, sharing its parameters; ``None`` when none applies."""
    if type(net) is not nn.Sequential:
        return None
    mods = list(net)
    out: list[nn.Module] = []
    head = _poly_head(mods)
    i = 3 if head is not None else 0
    if head is not None:
        out.append(head)
    while i < len(mods):
        m, nxt = mods[i], mods[i + 1] if i + 1 < len(mods) else None
        fused = _sigmoid_pool(m, nxt)
        if fused is not None:
            out.append(fused)
            i += 2
            continue
        out.append(HConv2d(m) if HConv2d.supports(m) else m)
        i += 1
    if not any(isinstance(m, (PolyC1Block, HConv2d, SigmoidAvgPool)) for m in out):
        return None
    return nn.Sequential(*out)


def agrees(fast: nn.Module, net: nn.Module, X: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Whether ``fast`` and ``net`` give the same outputs and parameter gradients on ``X`` (to rounding)."""
    params = [p for p in net.parameters() if p.requires_grad]
    ref = net(X)
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    out = fast(X)
    g = torch.autograd.grad(out.square().sum(), params)
    if out.shape != ref.shape or not torch.allclose(out, ref, rtol=rtol, atol=atol):
        return False
    scale = [max(1.0, b.abs().max().item()) for b in g_ref]
    return all(torch.allclose(a, b, rtol=rtol, atol=atol * s) for a, b, s in zip(g, g_ref, scale, strict=True))


def train_module(net: nn.Module, example_X: torch.Tensor) -> tuple[nn.Module, bool]:
    """``(module to train, True)`` with the fused operators, or ``(net, False)`` when they do not apply.

    They apply to float32 CPU batches of d2l's LeNet family (see the module's docstring), after a
    check on 8 examples of ``example_X`` that the view computes what ``net`` computes.
    """
    p = next(net.parameters(), None)
    if p is None or p.device.type != "cpu" or p.dtype != torch.float32 or example_X.dtype != torch.float32:
        return net, False
    if example_X.dim() != 4 or not torch.backends.mkldnn.is_available():
        return net, False
    view = fast_view(net)
    if view is None:
        return net, False
    try:
        ok = agrees(view, net, example_X[:8].to(p.device))
    except (RuntimeError, ValueError, IndexError):  # an operator that cannot run this shape
        ok = False
    return (view, True) if ok else (net, False)
