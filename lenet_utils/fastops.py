"""Custom CPU operators for d2l's LeNet family: the pieces of the opt-in fast trainer.

Each operator computes the same *function* as the layers it replaces, with the same parameters
(``nn.Conv2d`` weights are shared, never copied), arranged so that oneDNN (PyTorch's CPU
convolution library) and the elementwise kernels run on the layouts where they are fastest for
LeNet's small shapes:

* :class:`PolyC1Block` -- ``Conv2d(1, c, k, padding=p)`` + activation + 2x2 pooling as one op.
  The four output phases of the 2x2 pooling window become ``4c`` channels of a stride-1
  convolution over the four *polyphase* components of the image ("space to depth"), with a
  ``(k//2+1)`` kernel made of the original weights and zeros; the pooling is then a reduction over
  four adjacent channels. oneDNN runs that convolution (4 -> 24 channels, 3x3) much faster than
  the original (1 -> 6 channels, 5x5), and on float32 with the activation fused into it.
* :class:`SigmoidAvgPool` -- sigmoid + ``AvgPool2d(k, k)`` in one pass over ``channels_last``
  memory, summing the window in the order ``avg_pool2d`` does.
* :class:`HConv2d` -- ``nn.Conv2d`` whose forward, weight-gradient and input-gradient passes each
  run in the memory layout where oneDNN is fastest for the shape.

The results agree with the plain layers to rounding (float64: ~1e-15), not bit for bit in
float32, which is why the fast trainer is an opt-in with its own numerics
(:mod:`lenet_utils.fastnet`). Measured with ``python -m lenet_utils bench --fast``.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "HConv2d", "PolyC1Block", "SigmoidAvgPool"]

aten = torch.ops.aten
CL = torch.channels_last

#: activation modules the fused blocks understand, by the name the kernels use.
ACTIVATIONS: dict[type[nn.Module], str] = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu"}
_ACT_FWD = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
#: oneDNN's convolution with a fused pointwise post-op (float32 only).
FUSED_POSTOP = hasattr(torch.ops.mkldnn, "_convolution_pointwise") and torch.backends.mkldnn.is_available()


def _act_backward(act: str, g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient through the activation, from its *output* ``y``."""
    if act == "sigmoid":
        return aten.sigmoid_backward(g, y)
    if act == "tanh":
        return aten.tanh_backward(g, y)
    return aten.threshold_backward(g, y, 0)


def as_cl(t: torch.Tensor) -> torch.Tensor:
    """``t`` with ``channels_last`` strides; free (a re-stride) when it has one channel."""
    if t.dim() == 4 and t.shape[1] == 1 and t.is_contiguous():
        h, w = t.shape[2], t.shape[3]
        return t.as_strided(t.shape, (h * w, 1, w, 1))
    return t.contiguous(memory_format=CL)


def as_nchw(t: torch.Tensor) -> torch.Tensor:
    """``t`` with contiguous (NCHW) strides; free when it has one channel."""
    if t.dim() == 4 and t.shape[1] == 1 and t.is_contiguous(memory_format=CL):
        h, w = t.shape[2], t.shape[3]
        return t.as_strided(t.shape, (h * w, h * w, w, 1))
    return t.contiguous()


# --------------------------------------------------------------------------------------------
# HConv2d: per-pass memory layout


class _HConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, pad: int,
                fwd_cl: bool) -> torch.Tensor:  # fmt: skip
        args = ([1, 1], [pad, pad], [1, 1], False, [0, 0], 1)
        if fwd_cl:
            out = aten.convolution(as_cl(x), as_cl(w), b, *args)
        else:
            out = aten.convolution(as_nchw(x), as_nchw(w), b, *args)
        ctx.save_for_backward(x, w)
        ctx.pad, ctx.has_bias = pad, b is not None
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.saved_tensors
        args = ([1, 1], [ctx.pad, ctx.pad], [1, 1], False, [0, 0], 1)
        bias_sizes = [w.shape[0]] if ctx.has_bias else None
        # weight gradient: channels_last (NCHW is several times slower for these shapes)
        _, gw, gb = aten.convolution_backward(as_cl(g), as_cl(x), as_cl(w), bias_sizes, *args,
                                              [False, True, ctx.has_bias])  # fmt: skip
        gx = None
        if ctx.needs_input_grad[0]:  # input gradient: NCHW (oneDNN's CL backward-data is slower)
            shape_only = torch.empty(x.shape, dtype=x.dtype, device=x.device)
            gx = aten.convolution_backward(as_nchw(g), shape_only, as_nchw(w), None, *args,
                                           [True, False, False])[0]  # fmt: skip
        gw = gw.contiguous() if w.is_contiguous() else gw.contiguous(memory_format=CL)  # the parameter's layout
        return gx, gw, gb, None, None


class HConv2d(nn.Module):
    """A stride-1, ungrouped, undilated ``nn.Conv2d`` with a per-pass layout choice.

    Holds the original convolution (same parameters, same ``state_dict`` under ``conv.``).
    Forward runs ``channels_last`` unless the input has one channel (oneDNN's brgemm kernel is
    slow with one input channel); weight gradients run ``channels_last``, input gradients NCHW.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not self.supports(conv):
            raise ValueError(f"HConv2d needs a stride-1, ungrouped, undilated, square-padded Conv2d, got {conv}")
        self.conv = conv
        self.fwd_cl = conv.in_channels > 1

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """Whether ``conv`` is a convolution this operator computes."""
        return (type(conv) is nn.Conv2d and conv.stride == (1, 1) and conv.groups == 1
                and conv.dilation == (1, 1) and isinstance(conv.padding, tuple)
                and conv.padding[0] == conv.padding[1] and conv.padding_mode == "zeros")  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return _HConv.apply(x, c.weight, c.bias, c.padding[0], self.fwd_cl)


# --------------------------------------------------------------------------------------------
# Sigmoid + average pooling


def _pool_nhwc(s4: torch.Tensor, k: int) -> torch.Tensor:
    """``k x k`` window means of ``s4`` (B, H, W, C), summed row by row as ``avg_pool2d`` does."""
    B, H, W, C = s4.shape
    v = s4.view(B, H // k, k, W // k, k, C)
    acc = v[:, :, 0, :, 0]
    for i in range(k):
        for j in range(k):
            if i or j:
                acc = acc + v[:, :, i, :, j]
    return acc / (k * k)


class _SigmoidAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, k: int) -> torch.Tensor:
        s = torch.empty(z.shape, dtype=z.dtype, device=z.device, memory_format=CL)
        torch.sigmoid(z, out=s)  # any input layout -> channels_last, one pass
        ctx.save_for_backward(s)
        ctx.k = k
        return _pool_nhwc(s.permute(0, 2, 3, 1), k).permute(0, 3, 1, 2)  # (B, C, H/k, W/k), CL strides

    @staticmethod
    def backward(ctx: Any, gp: torch.Tensor) -> tuple[torch.Tensor, None]:
        (s,) = ctx.saved_tensors
        k = ctx.k
        B, C, H, W = s.shape
        g4 = (gp / (k * k)).permute(0, 2, 3, 1).unsqueeze(3)  # (B, H/k, W/k, 1, C)
        # each window's gradient copied to its k x k pixels, contiguous: the elementwise kernel
        # below then runs vectorised (on a broadcast view it is several times slower)
        row = torch.cat([g4] * k, 3).view(B, H // k, 1, W * C)
        gs = torch.cat([row] * k, 2).view(B, H, W, C)
        gz = aten.sigmoid_backward(gs, s.permute(0, 2, 3, 1))
        return gz.permute(0, 3, 1, 2), None


class SigmoidAvgPool(nn.Module):
    """``nn.Sigmoid()`` followed by ``nn.AvgPool2d(k, k)``, fused; output in ``channels_last``."""

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        self.k = k

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] % self.k or z.shape[-2] % self.k:  # ragged edge: the plain layers
            return nn.functional.avg_pool2d(torch.sigmoid(z), self.k)
        return _SigmoidAvgPool.apply(z, self.k)

    def extra_repr(self) -> str:
        return f"k={self.k}"


# --------------------------------------------------------------------------------------------
# Polyphase C1 block


@functools.cache
def _weight_index(co: int, k: int) -> torch.Tensor:
    """Where each weight of the ``(4co, 4, kp, kp)`` polyphase kernel comes from in the flat
    ``(co, 1, k, k)`` weight; ``co*k*k`` (one past the end) stands for a zero."""
    kp = k // 2 + 1
    o, a, b, c, d, u, v = torch.meshgrid(*(torch.arange(n) for n in (co, 2, 2, 2, 2, kp, kp)), indexing="ij")
    i, j = 2 * u + c - a, 2 * v + d - b  # output phase (a, b) sees input phase (c, d) at tap (u, v)
    inside = (i >= 0) & (i < k) & (j >= 0) & (j < k)
    idx = torch.where(inside, (o * k + i.clamp(0, k - 1)) * k + j.clamp(0, k - 1), co * k * k)
    return idx.reshape(co * 4, 4, kp, kp)


@functools.cache
def _phase_index(H0: int, W0: int, pad: int, Hi: int, Wi: int) -> torch.Tensor:
    """Where each pixel of the ``(Hi, Wi, 2, 2)`` polyphase image comes from in the flat
    ``H0 x W0`` image; ``H0*W0`` (one past the end) stands for the zero padding."""
    m, n, c, d = torch.meshgrid(*(torch.arange(s) for s in (Hi, Wi, 2, 2)), indexing="ij")
    i, j = 2 * m + c - pad, 2 * n + d - pad
    inside = (i >= 0) & (i < H0) & (j >= 0) & (j < W0)
    return torch.where(inside, i.clamp(0, H0 - 1) * W0 + j.clamp(0, W0 - 1), H0 * W0).reshape(-1)


def _polyphase(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pad: int) -> tuple[torch.Tensor, ...]:
    """The polyphase image ``(B, 4, Hi, Wi)`` (channels_last), kernel ``(4co, 4, kp, kp)`` and bias."""
    B, _, H0, W0 = x.shape
    co, _, k, _ = w.shape
    kp = k // 2 + 1
    Hp, Wp = (H0 + 2 * pad - k + 1) // 2, (W0 + 2 * pad - k + 1) // 2
    Hi, Wi = Hp + kp - 1, Wp + kp - 1
    xz = torch.cat([x.reshape(B, H0 * W0), x.new_zeros(B, 1)], 1)
    xp = xz.index_select(1, _phase_index(H0, W0, pad, Hi, Wi).to(x.device)).view(B, Hi, Wi, 4).permute(0, 3, 1, 2)
    we = torch.cat([w.reshape(-1), w.new_zeros(1)])[_weight_index(co, k).to(w.device)]
    return xp, we.contiguous(memory_format=CL), b.repeat_interleave(4)


class _PolyC1(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pad: int, act: str,
                pool: str) -> torch.Tensor:  # fmt: skip
        B = x.shape[0]
        co, k = w.shape[0], w.shape[2]
        xp, we, be = _polyphase(x, w, b, pad)
        if FUSED_POSTOP and x.dtype == torch.float32 and x.device.type == "cpu":
            y = torch.ops.mkldnn._convolution_pointwise(xp, we, be, [0, 0], [1, 1], [1, 1], 1, act, [], "")
        else:
            z = aten.convolution(xp, we, be, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
            y = _ACT_FWD[act](z.contiguous(memory_format=CL))
        Hp, Wp = y.shape[2], y.shape[3]
        y5 = y.permute(0, 2, 3, 1).view(B, Hp, Wp, co, 4)  # the four phases of each pooling window
        if pool == "avg":
            p = (y5.reshape(-1, 4) @ y.new_full((4, 1), 0.25)).view(B, Hp, Wp, co)
            ctx.save_for_backward(xp, we, y)
        else:
            p, arg = y5.max(dim=-1)
            ctx.save_for_backward(xp, we, y, arg)
        ctx.meta = (act, pool, co, k)
        return p.permute(0, 3, 1, 2)  # (B, co, Hp, Wp), channels_last strides

    @staticmethod
    def backward(ctx: Any, gp: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        act, pool, co, k = ctx.meta
        xp, we, y = ctx.saved_tensors[:3]
        B, _, Hp, Wp = gp.shape
        g4 = gp.permute(0, 2, 3, 1).contiguous()  # (B, Hp, Wp, co); free when gp is channels_last
        y5 = y.permute(0, 2, 3, 1).view(B, Hp, Wp, co, 4)
        if pool == "avg":  # copied to the four phases, contiguous (a broadcast view is slower)
            g1 = (g4 * 0.25).reshape(-1, 1)
            gy = torch.cat([g1] * 4, 1).view(B, Hp, Wp, co, 4)
        else:
            arg = ctx.saved_tensors[3]
            gy = torch.zeros_like(y5).scatter_(-1, arg.unsqueeze(-1), g4.unsqueeze(-1))
        gz = _act_backward(act, gy, y5).reshape(B, Hp, Wp, 4 * co).permute(0, 3, 1, 2)
        _, gwe, gbe = aten.convolution_backward(gz, xp, we, [4 * co], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                                                [False, True, True])  # fmt: skip
        idx = _weight_index(co, k).to(gwe.device).reshape(-1)
        gw = gwe.new_zeros(co * k * k + 1).index_add_(0, idx, gwe.contiguous().reshape(-1))[:-1]
        return None, gw.view(co, 1, k, k), gbe.view(co, 4).sum(1), None, None, None


class PolyC1Block(nn.Module):
    """``Conv2d(1, c, k, padding=p)`` + sigmoid/tanh/ReLU + 2x2 average or max pooling, as one op.

    Holds the original convolution (its parameters, under ``conv.``). The input's gradient is not
    computed (this block is the first layer). Output in ``channels_last``.
    """

    def __init__(self, conv: nn.Conv2d, act: str, pool: str) -> None:
        super().__init__()
        if act not in _ACT_FWD or pool not in ("avg", "max"):
            raise ValueError(f"PolyC1Block: unknown activation {act!r} or pooling {pool!r}")
        self.conv, self.act, self.pool = conv, act, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return _PolyC1.apply(x, c.weight, c.bias, c.padding[0], self.act, self.pool)

    def extra_repr(self) -> str:
        return f"act={self.act}, pool={self.pool}"
