"""Looking inside a trained network: feature maps, saliency, Grad-CAM, CAM and their sanity checks.

* :func:`feature_maps` — what chosen layers output, caught with forward hooks.
* :class:`Scores` — a network's outputs as *scores* (larger = more evidence): logits as they
  are, LeNet-5's RBF penalties negated (Eq. 7 is a squared distance: the best class has the
  smallest one, so "more of class c" is ``-y_c``).
* :func:`grad_cam` — Grad-CAM (Selvaraju et al. 2017), written out; ``tests/test_explain.py``
  checks it against Captum's ``LayerGradCam``.
* :func:`class_activation_map` — CAM (Zhou et al. 2016) for networks that end in global
  average pooling and one linear layer (:func:`lenet_utils.models.lenet_gap`).
* :func:`attribute` — one entry point for the input-space maps (vanilla gradient, SmoothGrad,
  Integrated Gradients, occlusion through Captum; Grad-CAM carried to the input's pixels with
  :func:`to_input`).
* :func:`cascading_randomization`, :func:`rank_correlation` — the model-randomisation test of
  Adebayo et al. (2018): re-initialise layers from the top down, compare the maps by rank.
* :func:`confusion_matrix`, :func:`top_two`, :func:`frequency_response` — small summaries.

Captum is imported inside the functions that use it, so ``import lenet_utils.explain`` needs
torch only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import RBFOutput, SparseConv2d, Subsampling

__all__ = [
    "METHODS",
    "Scores",
    "attribute",
    "cascading_randomization",
    "class_activation_map",
    "confusion_matrix",
    "feature_maps",
    "frequency_response",
    "grad_cam",
    "layer_geometry",
    "rank_correlation",
    "to_input",
    "top_two",
]

#: The input-space attribution methods of :func:`attribute`.
METHODS: tuple[str, ...] = ("gradient", "smoothgrad", "integrated_gradients", "occlusion", "grad_cam")


# ------------------------------------------------------------------------------------------
# Looking at activations


def feature_maps(
    model: nn.Module, x: torch.Tensor, layers: Mapping[str, nn.Module]
) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` (``{name: module}``) when ``model`` reads ``x``, caught by hooks.

    A forward hook is put on each module, the model is run once without gradients and the hooks
    are removed again (also on error). A module called more than once in a forward pass (a
    shared activation) would be overwritten by its last call: hook modules used once.
    """
    caught: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: caught.__setitem__(
                name, out.detach()
            )
        )
        for name, module in layers.items()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {name: caught[name] for name in layers}


class Scores(nn.Module):
    """A classifier whose outputs grow with the evidence for each class.

    Saliency, Grad-CAM and CAM explain a *score*: a number the network raises when it sees
    more of class ``c``. Softmax networks output such scores (logits) already. LeNet-5's RBF
    units output penalties ``y_c = ||F6 - w_c||^2`` (paper Eq. 7), smallest for the chosen
    class, so the explained score is the negated penalty ``-y_c``: its gradient points to the
    pixels that bring F6 *closer* to the prototype of ``c``.

    Args:
        net: the network.
        penalties: ``True`` when ``net`` outputs penalties (default: ``True`` for a network
            with an ``output`` RBF layer such as :class:`~lenet_utils.models.LeNet5Paper`).
    """

    def __init__(self, net: nn.Module, *, penalties: bool | None = None) -> None:
        super().__init__()
        self.net = net
        self.penalties = isinstance(getattr(net, "output", None), RBFOutput) if penalties is None else penalties

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # (B, classes)
        return -out if self.penalties else out


# ------------------------------------------------------------------------------------------
# Grad-CAM and CAM


def grad_cam(
    model: nn.Module,
    layer: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    *,
    relu: bool = True,
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017, Eqs. 1-2) of the maps that ``layer`` outputs.

    ``model(x)`` must return scores, larger = more evidence (wrap RBF networks in
    :class:`Scores`). ``target``: one class for every image, or one per image. Returns
    ``(B, 1, H, W)`` at the layer's resolution; :func:`to_input` puts it on the input's pixels.
    """
    caught: dict[str, torch.Tensor] = {}
    hook = layer.register_forward_hook(
        lambda _m, _i, out: caught.__setitem__("A", out)
    )
    try:
        # x joins the graph, so A has gradients even with frozen weights
        with torch.enable_grad():
            scores = model(x.detach().requires_grad_(True))  # (B, classes)
    finally:
        hook.remove()
    A = caught["A"]  # (B, K, H, W): the layer's K feature maps
    # (B, 1)
    c = torch.as_tensor(target, device=scores.device).expand(len(x)).view(-1, 1)
    # the images do not interact: one backward pass for all
    y_c = scores.gather(1, c).sum()
    (dA,) = torch.autograd.grad(y_c, A)  # (B, K, H, W): d y_c / d A_k(i, j)
    # (B, K, 1, 1): Eq. 1, gradients averaged over positions
    alpha = dA.mean(dim=(2, 3), keepdim=True)
    # (B, 1, H, W): Eq. 2, maps weighted by alpha and summed
    cam = (alpha * A).sum(dim=1, keepdim=True)
    return (F.relu(cam) if relu else cam).detach()


def _gap_head(model: nn.Module) -> tuple[nn.Sequential, nn.Linear]:
    """``(features, linear)`` of a Sequential ending in global average pooling, Flatten, Linear."""
    ok = (
        isinstance(model, nn.Sequential)
        and len(model) >= 4
        and isinstance(model[-3], nn.AdaptiveAvgPool2d)
        and model[-3].output_size in (1, (1, 1))
        and isinstance(model[-2], nn.Flatten)
        and isinstance(model[-1], nn.Linear)
    )
    if not ok:
        raise ValueError(
            "CAM needs a network that ends in global average pooling, Flatten and one Linear layer "
            "(e.g. lenet_utils.models.lenet_gap); for any other network use grad_cam"
        )
    return model[:-3], model[-1]


def class_activation_map(
    model: nn.Module, x: torch.Tensor, target: int | torch.Tensor
) -> torch.Tensor:
    r"""CAM (Zhou et al. 2016, Eq. 2): ``M_c(i, j) = sum_k w_ck A_k(i, j)``.

    For a network whose class score is :math:`S_c = \sum_k w_{ck} \frac{1}{HW}\sum_{ij} A_k(i,j)
    + b_c` (maps ``A``, global average pooling, one linear layer), CAM spreads that score back
    over the positions: the mean of ``M_c`` plus ``b_c`` *is* ``S_c``. Returns ``(B, 1, H, W)``
    at the maps' resolution, without a ReLU (negative = evidence against ``c``).
    """
    features, linear = _gap_head(model)
    with torch.no_grad():
        A = features(x)  # (B, K, H, W)
    c = torch.as_tensor(target).expand(len(x))  # (B,)
    w = linear.weight[c]  # (B, K): the class's row of the linear layer
    # (B, 1, H, W)
    return torch.einsum("bk,bkhw->bhw", w, A).unsqueeze(1).detach()


# ------------------------------------------------------------------------------------------
# Heat maps on the input's pixels


def layer_geometry(model: nn.Module, layer: nn.Module) -> tuple[float, float]:
    """``(jump, offset)``: unit ``i`` of ``layer``'s maps is centred on input pixel ``offset + jump * i``.

    Walks the model's leaf modules in registration order (the forward order of every LeNet
    here) up to and including ``layer``; each module with a ``kernel_size`` (convolutions,
    pooling, LeNet-5's subsampling) moves the centre by ``jump * ((k - 1) / 2 - padding)`` and
    multiplies the jump by its stride. The recurrence is the one of
    :func:`lenet_utils.handconv.receptive_fields`, with padding, which moves the centres.
    """

    def first(v: int | tuple[int, ...] | str, k: int) -> float:
        if isinstance(v, str):  # "valid" or "same"
            return (k - 1) / 2 if v == "same" else 0.0
        return float(v[0] if isinstance(v, tuple) else v)

    jump, offset = 1.0, 0.0
    for m in model.modules():
        if isinstance(m, Subsampling):
            k, s, p = m.kernel_size, m.kernel_size, 0.0
        elif isinstance(m, SparseConv2d):
            k, s, p = m.kernel_size, 1, 0.0
        elif isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k = int(first(m.kernel_size, 1))
            s, p = int(first(m.stride, k)), first(m.padding, k)
        else:
            k = 0
        if k:
            offset += jump * ((k - 1) / 2 - p)
            jump *= s
        if m is layer:
            return jump, offset
    raise ValueError("layer is not a module of model")


def to_input(maps: torch.Tensor, size: int, jump: float, offset: float) -> torch.Tensor:
    """Layer maps ``(B, 1, h, w)`` drawn on the input's ``size x size`` pixels: ``(B, size, size)``.

    Each unit is placed at the centre of its receptive field (see :func:`layer_geometry`) and
    the values in between are interpolated bilinearly; beyond the outermost centres they fade
    to zero within one step, so the drawing is zero outside the span of the unit centres (for
    C3, input pixels 6.5 to 24.5, although each C3 unit sees 14x14 pixels and together they see
    the whole 32x32 input). Plain resizing would stretch a 10x10 map over the whole input and
    shift C3's units off their centres by up to 5.4 pixels (6.5 with ``align_corners=True``).
    """
    B, _, h, w = maps.shape
    p = torch.arange(size, dtype=maps.dtype)
    gy = 2 * ((p - offset) / jump) / max(h - 1, 1) - 1  # (size,) grid_sample coordinates, rows
    gx = 2 * ((p - offset) / jump) / max(w - 1, 1) - 1  # (size,) columns
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).expand(B, size, size, 2)  # (B, size, size, 2)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0]  # (B, size, size)


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    method: str,
    *,
    layer: nn.Module | None = None,
    baseline: float = 0.0,
    samples: int = 32,
    noise: float = 0.15,
    steps: int = 32,
    window: int = 6,
    stride: int = 2,
    seed: int = 0,
) -> torch.Tensor:
    """An attribution map per image, on the input's pixels: ``(B, H, W)``, signed.

    ``model(x)`` returns scores (wrap RBF networks in :class:`Scores`). Methods (:data:`METHODS`):

    * ``"gradient"`` — d score / d pixel (Simonyan et al. 2014; Captum ``Saliency``, signed);
    * ``"smoothgrad"`` — the gradient averaged over ``samples`` noisy copies, noise standard
      deviation ``noise`` times the input's range (Smilkov et al. 2017; ``NoiseTunnel``);
    * ``"integrated_gradients"`` — (x - baseline) times the gradient averaged along the straight
      path from the baseline image, ``steps`` points (Sundararajan et al. 2017);
    * ``"occlusion"`` — how much the score drops when a ``window`` square (every ``stride``
      pixels) is set to ``baseline``, averaged over the windows covering each pixel;
    * ``"grad_cam"`` — :func:`grad_cam` at ``layer``, placed with :func:`to_input`.

    ``baseline`` is the background value (0 for images in [0, 1], -0.1 on the paper's scale).
    SmoothGrad's noise comes from its own generator seeded with ``seed``: repeatable, and the
    global random state is left alone.
    """
    from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion, Saliency

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    t = torch.as_tensor(target).expand(len(x))
    if method == "grad_cam":
        if layer is None:
            raise ValueError("grad_cam needs layer= (a convolution or its activation, e.g. net.C3)")
        return to_input(grad_cam(model, layer, x, t), x.shape[-1], *layer_geometry(model, layer))
    spread = float(x.max() - x.min())
    x = x.detach().requires_grad_(True)  # the gradient methods differentiate with respect to x
    if method == "gradient":
        out = Saliency(model).attribute(x, target=t, abs=False)
    elif method == "smoothgrad":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sd = noise * spread
            out = NoiseTunnel(Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=samples, stdevs=sd, target=t, abs=False
            )
    elif method == "integrated_gradients":
        out = IntegratedGradients(model).attribute(x, baselines=baseline, target=t, n_steps=steps)
    else:
        out = Occlusion(model).attribute(
            x,
            sliding_window_shapes=(1, window, window),
            strides=(1, stride, stride),
            baselines=baseline,
            target=t,
            perturbations_per_eval=64,
        )
    return out.detach()[:, 0]  # (B, H, W)


# ------------------------------------------------------------------------------------------
# Sanity checks (Adebayo et al. 2018)


def cascading_randomization(
    model: nn.Module,
    layers: Sequence[str],
    *,
    init: Callable[[nn.Module], None] | None = None,
    seed: int = 0,
) -> list[tuple[str, nn.Module]]:
    """Copies of ``model`` with more and more layers re-initialised, from the top down.

    ``layers`` names modules (``dict(model.named_modules())`` keys) from the output towards the
    input; copy ``i`` has the first ``i + 1`` of them re-drawn (Adebayo et al. 2018, cascading
    randomisation). Returns ``[(name of the last layer re-drawn, copy), ...]`` in eval mode.
    ``init(module)`` re-draws one module (default: its own ``reset_parameters()``); the draws
    come from the global generator seeded with ``seed`` inside :func:`torch.random.fork_rng`,
    so they repeat and the caller's random state is left as it was. ``model`` is not changed.
    """
    named = dict(model.named_modules())
    missing = [n for n in layers if n not in named]
    if missing:
        raise ValueError(
            f"no module named {missing} in the model; names: "
            f"{[n for n in named if n]}"
        )
    net = copy.deepcopy(model).eval()
    mods = dict(net.named_modules())
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in layers:
            m = mods[name]
            if init is not None:
                init(m)
            elif hasattr(m, "reset_parameters"):
                m.reset_parameters()  # type: ignore[operator]
            else:
                raise ValueError(
                    f"module {name!r} has no reset_parameters(): pass init="
                )
            out.append((name, copy.deepcopy(net)))
    return out


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-D tensor, ties given the mean of the ranks they share."""
    _, inverse, counts = torch.unique(v, sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # rank of the last member of each group of equal values
    return (last - (counts.double() - 1) / 2)[inverse]


def rank_correlation(
    a: torch.Tensor, b: torch.Tensor, *, absolute: bool = True, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Spearman's rank correlation of two batches of maps, one value per image: ``(B,)``.

    Maps are flattened; ties share their mean rank (ReLU'd Grad-CAM maps have many zeros).
    ``absolute=True`` compares the magnitudes, as Adebayo et al. (2018) do for their main
    figures: a map whose sign flips everywhere still points at the same pixels. ``mask`` (same
    shape, boolean) keeps only some pixels of each image, e.g. the ink: pixels where both maps
    are zero for the same reason (blank background) then no longer count as agreement. A
    constant map has no ranks to compare: its correlation is NaN.
    """
    if a.shape != b.shape or (mask is not None and mask.shape != a.shape):
        shapes = [tuple(t.shape) for t in (a, b, mask) if t is not None]
        raise ValueError(f"maps (and mask) differ in shape: {shapes}")
    a, b = a.reshape(len(a), -1).double(), b.reshape(len(b), -1).double()
    keep = mask.reshape(len(a), -1) if mask is not None else torch.ones_like(a, dtype=torch.bool)
    if absolute:
        a, b = a.abs(), b.abs()
    out = []
    for u, v, k in zip(a, b, keep, strict=True):
        ru, rv = _ranks(u[k]), _ranks(v[k])
        ru, rv = ru - ru.mean(), rv - rv.mean()
        den = math.sqrt(float((ru * ru).sum() * (rv * rv).sum()))
        out.append(float((ru * rv).sum()) / den if den > 0 else math.nan)
    return torch.tensor(out)


# ------------------------------------------------------------------------------------------
# Small summaries


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """``(classes, classes)`` counts: row = true class, column = predicted class."""
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels and predictions differ in shape: {tuple(y_true.shape)} vs {tuple(y_pred.shape)}")
    idx = y_true.long() * classes + y_pred.long()
    return torch.bincount(idx, minlength=classes * classes).view(classes, classes)


def top_two(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(first, second, margin)`` per row of scores (larger = better): the two best classes and
    how far the best is ahead of the second. For RBF penalties pass ``-penalties``: the margin
    is then the second-smallest penalty minus the smallest."""
    top = scores.topk(2, dim=1)
    return top.indices[:, 0], top.indices[:, 1], top.values[:, 0] - top.values[:, 1]


def frequency_response(kernels: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Magnitude of the 2-D Fourier transform of each kernel, zero-padded to ``size``, centred.

    ``kernels``: ``(N, k, k)``. Returns ``(N, size, size)``: entry ``(size//2, size//2)`` is the
    response to a constant image (the kernel's sum), the rim the response to the finest
    checkerboard. A kernel that answers to strokes of one orientation shows two bright spots on
    the line through the centre perpendicular to them.
    """
    if kernels.dim() != 3:
        raise ValueError(
            f"expected (N, k, k) kernels, got {tuple(kernels.shape)}"
        )
    # (N, size, size)
    spectrum = torch.fft.fft2(kernels.detach().double(), s=(size, size))
    return torch.fft.fftshift(spectrum.abs(), dim=(-2, -1)).float()
