r"""Stochastic diagonal Levenberg–Marquardt (LeCun et al. 1998, Appendix C).

The paper trains LeNet-5 with stochastic gradient descent in which every parameter
:math:`w_k` has its own step size

.. math:: \eta_k = \frac{\epsilon}{\mu + h_{kk}}

where :math:`h_{kk}` estimates the diagonal of the Gauss–Newton approximation of the Hessian
of the loss with respect to :math:`w_k`, :math:`\mu = 0.02` keeps the step bounded when the
curvature is tiny, and :math:`\epsilon` is a global rate that follows a fixed schedule over the
20 passes. The :math:`h_{kk}` are re-estimated on 500 training patterns before each pass.

Two pieces, usable separately:

* :class:`SDLM` — a ``torch.optim.Optimizer``: ``p -= lr / (mu + h) * p.grad``, with ``h``
  supplied by :meth:`SDLM.set_hessian` (from any estimator you like).
* :func:`gauss_newton_diagonal` — the paper's estimator: second derivatives back-propagated
  through the network with *squared* weights (Appendix C; LeCun, Bottou, Orr, Müller,
  "Efficient BackProp", 1998, §9.1). For a layer :math:`a_i = \sum_j w_{ij} x_j + b_i` followed
  by :math:`x_i' = f(a_i)`:

  .. math::

     \frac{\partial^2 E}{\partial a_i^2} \approx f'(a_i)^2 \frac{\partial^2 E}{\partial x_i'^2}, \qquad
     \frac{\partial^2 E}{\partial x_j^2} \approx \sum_i w_{ij}^2 \frac{\partial^2 E}{\partial a_i^2}, \qquad
     \frac{\partial^2 E}{\partial w_k^2} \approx \sum_{(i,j) \in V_k} x_j^2 \frac{\partial^2 E}{\partial a_i^2}

  where :math:`V_k` is the set of connections that share the weight :math:`w_k` (every
  position of a convolution kernel, every unit of a subsampling map). The first rule drops the
  :math:`f''` term (Gauss–Newton), the last two drop the off-diagonal terms; what remains is
  non-negative, so :math:`\eta_k` is always positive. We compute these sums exactly with
  autograd: the vector–Jacobian product of the *same layer* evaluated on squared inputs with
  squared weights, applied to :math:`\partial^2 E/\partial a^2`, gives both
  :math:`\sum_i w_{ij}^2 (\cdot)` and :math:`\sum x_j^2 (\cdot)`.

What we compute at the top (our choice; the paper does not spell it out): the curvature of the
loss with respect to each F6 output :math:`x_j` is taken as 2, the exact second derivative of
the correct-class penalty :math:`y_D = \sum_j (x_j - w_{Dj})^2`, i.e. of the MLE criterion Eq. 8.
The MAP term of Eq. 9 adds a positive semi-definite part that vanishes on well-classified
patterns; ``output_curvature="map"`` includes its exact diagonal instead, for comparison.

Departures from the paper:

* ``h`` is averaged over the 500 patterns (the paper's "running average" over the same
  patterns is the same quantity up to its averaging weights).
* ``mu`` defaults to the paper's 0.02. With the curvature computed here, units that saturate
  during the first pass get tiny ``h`` at the next estimate and steps near ``eps / mu``; our
  full runs use ``mu = 1`` and ``mu = 0.2`` (measurements in ``data/paper/`` and chapter 5).
* The optimiser applies the rule to whatever gradient it receives. Training with mini-batches
  (as :mod:`lenet_utils.paper` does for speed) and the *summed* loss of the batch makes one
  update equal, to first order, to the paper's B successive single-pattern updates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from .layers import RBFOutput, ScaledTanh, SparseConv2d, Subsampling

__all__ = ["PAPER_EPS", "SDLM", "gauss_newton_diagonal", "paper_eps"]

#: The global rate schedule of §III.B / Appendix C: (number of passes, epsilon).
PAPER_EPS: tuple[tuple[int, float], ...] = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5))
_PAPER_EPS_AFTER = 1e-5  # "0.00001 after" (passes 13 and later)


def paper_eps(pass_number: int) -> float:
    """The paper's epsilon for pass ``pass_number`` (1-based): 5e-4 for passes 1-2, 2e-4 for
    3-5, 1e-4 for 6-8, 5e-5 for 9-12, 1e-5 from pass 13 on (§III.B)."""
    if pass_number < 1:
        raise ValueError(f"passes are numbered from 1, got {pass_number}")
    end = 0
    for n, eps in PAPER_EPS:
        end += n
        if pass_number <= end:
            return eps
    return _PAPER_EPS_AFTER


class SDLM(torch.optim.Optimizer):
    r"""Stochastic diagonal Levenberg–Marquardt update (paper Appendix C).

    ``step()`` does, for every parameter with a gradient,
    :math:`w_k \leftarrow w_k - \frac{\epsilon}{\mu + h_{kk}}\, g_k`. ``lr`` is the paper's
    :math:`\epsilon` (change it per pass through ``param_groups``, like any torch learning
    rate); the curvature ``h`` comes from :meth:`set_hessian`, e.g. with
    :func:`gauss_newton_diagonal` before each pass.

    Args:
        params: parameters or parameter groups.
        lr: global rate :math:`\epsilon` (paper: 5e-4 for the first two passes).
        mu: the damping :math:`\mu` (paper: 0.02).
    """

    def __init__(self, params: Iterable[Any], lr: float = 5e-4, mu: float = 0.02) -> None:
        if lr <= 0:
            raise ValueError(f"lr (epsilon) must be positive, got {lr}")
        if mu <= 0:
            raise ValueError(f"mu must be positive (it bounds the step when h is 0), got {mu}")
        super().__init__(params, {"lr": lr, "mu": mu})

    @torch.no_grad()
    def set_hessian(self, hessian: Mapping[torch.Tensor, torch.Tensor]) -> None:
        """Store the diagonal curvature ``h`` of each parameter (same shape, non-negative).

        ``hessian`` maps parameter tensors to their ``h``; every parameter of the optimiser
        must be present.
        """
        by_id = {id(p): h for p, h in hessian.items()}
        for group in self.param_groups:
            for p in group["params"]:
                h = by_id.get(id(p))
                if h is None:
                    raise KeyError(f"no curvature given for a parameter of shape {tuple(p.shape)}")
                if h.shape != p.shape:
                    raise ValueError(f"curvature shape {tuple(h.shape)} != parameter shape {tuple(p.shape)}")
                if (h < 0).any():
                    raise ValueError("the Gauss-Newton diagonal must be non-negative")
                self.state[p]["hessian"] = h.detach().to(p.device, p.dtype).clone()

    def learning_rates(self) -> dict[torch.Tensor, torch.Tensor]:
        """The per-parameter step sizes :math:`\\eta_k = \\epsilon / (\\mu + h_{kk})` now in force."""
        out = {}
        for group in self.param_groups:
            for p in group["params"]:
                h = self.state[p].get("hessian")
                if h is not None:
                    out[p] = group["lr"] / (group["mu"] + h)
        return out

    def _denom(self, p: torch.Tensor, lr: float, mu: float) -> torch.Tensor:
        """``(mu + h) / lr`` for parameter ``p``, cached: it changes once a pass."""
        state = self.state[p]
        h = state.get("hessian")
        if h is None:
            raise RuntimeError(
                "SDLM has no curvature for this parameter: call "
                "set_hessian(...) (e.g. with gauss_newton_diagonal) "
                "before the first step"
            )
        key = (lr, mu, h.data_ptr())
        denom = state.get("denom")
        if denom is None or state.get("denom_for") != key:
            denom = (h + mu) / lr
            state["denom"], state["denom_for"] = denom, key
        return denom

    @torch.no_grad()
    def step(
        self, closure: Callable[[], torch.Tensor] | None = None
    ) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu = group["lr"], group["mu"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            denoms = [self._denom(p, lr, mu) for p in params]
            # one fused call: p.addcdiv_(g, denom, value=-1) for every tensor
            torch._foreach_addcdiv_(params, grads, denoms, value=-1.0)
        return loss


# ------------------------------------------------------------------------------------------
# The Gauss–Newton diagonal by back-propagating second derivatives with squared weights

_BILINEAR = (nn.Conv2d, nn.Linear, Subsampling, SparseConv2d)
_POINTWISE = (ScaledTanh, nn.Tanh, nn.Sigmoid, nn.ReLU, nn.Identity)


def _ops(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as a flat list of ('linear' | 'act' | 'flatten', module), ending before the RBF."""
    from .models import LeNet5Paper

    if isinstance(model, LeNet5Paper):
        f = model.f
        return [("linear", model.C1), ("act", f), ("linear", model.S2), ("act", f),
                ("linear", model.C3), ("act", f), ("linear", model.S4), ("act", f),
                ("linear", model.C5), ("act", f), ("flatten", nn.Flatten()),
                ("linear", model.F6), ("act", f)]  # fmt: skip
    if isinstance(model, nn.Sequential):
        ops = []
        for m in model:
            if isinstance(m, _BILINEAR):
                ops.append(("linear", m))
            elif isinstance(m, _POINTWISE):
                ops.append(("act", m))
            elif isinstance(m, nn.Flatten):
                ops.append(("flatten", m))
            elif isinstance(m, RBFOutput):
                break
            else:
                raise TypeError(
                    f"gauss_newton_diagonal cannot propagate through {type(m).__name__}: use layers "
                    "linear in their input and weights (Conv2d, Linear, Subsampling, SparseConv2d) "
                    "and pointwise activations"
                )
        return ops
    raise TypeError(f"gauss_newton_diagonal supports LeNet5Paper and nn.Sequential, not {type(model).__name__}")


def _output_curvature(
    x: torch.Tensor, model: nn.Module, target: torch.Tensor | None, kind: str, j: float
) -> torch.Tensor:
    """d2E/dx^2 for the F6 outputs x (B, 84): 2 (the y_D term), or the exact diagonal of Eq. 9."""
    if kind == "mle":
        return torch.full_like(x, 2.0)  # d2/dx_j^2 of sum_j (x_j - w_Dj)^2
    if kind != "map":
        raise ValueError(f"output_curvature must be 'mle' or 'map', not {kind!r}")
    if target is None:
        raise ValueError("output_curvature='map' needs the targets")
    rbf = model.output if hasattr(model, "output") else next(m for m in model.modules() if isinstance(m, RBFOutput))
    w = rbf.prototypes  # (10, 84)
    y = rbf(x)  # (B, 10)
    logits = torch.cat([-y, y.new_full((len(y), 1), -j)], 1)  # (B, 11): ten classes + rubbish
    p = torch.softmax(logits, 1)[:, :10]  # (B, 10)
    d = x.unsqueeze(1) - w.unsqueeze(0)  # (B, 10, 84)
    s = p.sum(1, keepdim=True)  # (B, 1)
    # Hessian of y_D + log(e^-j + sum e^-y_i) wrt x: 2(1 - s) I + J^T (diag p - p p^T) J, J = 2 d
    m = (p.unsqueeze(2) * d).sum(1)  # (B, 84)
    var = (p.unsqueeze(2) * d * d).sum(1) - m * m  # (B, 84), >= 0
    return 2 * (1 - s) + 4 * var


@torch.no_grad()
def gauss_newton_diagonal(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    output_curvature: str = "mle",
    j: float = 10.0,
) -> dict[torch.Tensor, torch.Tensor]:
    """Average over the patterns ``x`` of the Gauss–Newton diagonal of each
    parameter (App. C).

    Args:
        model: :class:`~lenet_utils.models.LeNet5Paper`, or an
            ``nn.Sequential`` of Conv2d / Linear / Subsampling / SparseConv2d
            layers, pointwise activations and Flatten, optionally ending with
            :class:`~lenet_utils.layers.RBFOutput`.
        x: ``(N, ...)`` input patterns (the paper uses N = 500).
        target: class indices, needed only for ``output_curvature="map"``.
        output_curvature: ``"mle"`` — curvature 2 on every F6 output (the exact
            second derivative of the correct-class penalty); ``"map"`` — the
            exact diagonal of the Hessian of Eq. 9 with respect to the F6
            outputs.
        j: the constant of Eq. 9 (only for ``"map"``).

    Returns:
        ``{parameter: h}`` with ``h >= 0`` of the parameter's shape, for
        :meth:`SDLM.set_hessian`.
    """
    ops = _ops(model)
    # forward, remembering each op's input
    inputs: list[torch.Tensor] = []
    h = x
    for _, m in ops:
        inputs.append(h)
        h = m(h)
    # (N, 84): d2E/dx^2 at F6
    g = _output_curvature(h, model, target, output_curvature, j)
    hess: dict[torch.Tensor, torch.Tensor] = {}
    for (kind, m), inp in zip(reversed(ops), reversed(inputs), strict=True):
        if kind == "flatten":
            g = g.reshape(inp.shape)
        elif kind == "act":
            with torch.enable_grad():
                a = inp.detach().requires_grad_(True)
                # f'(a), pointwise
                (fprime,) = torch.autograd.grad(m(a).sum(), a)
            g = fprime.pow(2) * g  # Gauss-Newton: drop the f'' term
        else:
            names = [n for n, p in m.named_parameters() if p.requires_grad]
            with torch.enable_grad():
                x2 = inp.detach().pow(2).requires_grad_(True)
                sq = {
                    n: p.detach().pow(2).requires_grad_(True)
                    for n, p in m.named_parameters()
                }
                # the same layer on squared inputs and weights
                out = functional_call(m, sq, (x2,))
                grads = torch.autograd.grad(
                    out, [x2, *(sq[n] for n in names)], grad_outputs=g
                )
            g = grads[0]  # sum_i w_ij^2 d2E/da_i^2
            params = dict(m.named_parameters())
            for n, gh in zip(names, grads[1:], strict=True):
                # sum over shared connections of x_j^2 d2E/da_i^2, mean over
                # patterns
                hess[params[n]] = gh / len(x)
    return hess
