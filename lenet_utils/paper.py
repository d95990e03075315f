"""The 1998 training recipe for LeNet-5 (LeCun et al. 1998, §II.C, §III.B-C, Appendix C).

``python -m lenet_utils train-paper`` trains :class:`~lenet_utils.models.LeNet5Paper` on
MNIST as the paper does:

* input 32x32, background -0.1, ink 1.175 (§II.B): ``load_data(..., size=32, normalize="paper")``;
* the MAP criterion Eq. 9 on the RBF penalties (:func:`lenet_utils.losses.map_loss`);
* stochastic diagonal Levenberg–Marquardt (:class:`lenet_utils.optim.SDLM`) with the
  Gauss–Newton diagonal re-estimated on 500 patterns before each pass, mu = 0.02 and the
  paper's epsilon schedule over 20 passes;
* optionally (``--distortions``) random planar affine distortions of the training patterns —
  translation, scaling, squeezing, horizontal shearing (§III.C).

``--model lenet1``, ``lenet4`` or ``fc-300`` (and the other
:data:`lenet_utils.models.PAPER_NETS`) trains the other networks of the paper's benchmark
(§III.C, Fig. 9) with the same recipe, each on its own input (:func:`paper_inputs`);
:mod:`lenet_utils.fig9` runs them as rows of Fig. 9.

Defaults are the paper's values. The committed runs (``data/paper/README.md``) depart from
them in two settings, each shown necessary by a measurement in chapter 5:

* ``--init sqrt``: initial weights uniform in ±2.4/sqrt(F_i) instead of ±2.4/F_i as printed in
  Appendix C. With the printed range every curvature estimate is far below mu, all steps hit
  eps/mu and the network saturates within one pass.
* ``--mu 1`` instead of 0.02. With our curvature estimate,
  mu = 0.02 lets the steps of units that saturate during pass 1 grow towards eps/mu when h is
  re-estimated, and the second pass makes the network worse (``data/paper/mu_check/``; with
  one pattern per update too, ``data/paper/online_mu002/``). mu is chosen on 10,000 held-out
  training images (``--validation``, ``data/paper/mu_val/``): 0.2 and 1 tie there, and the rule
  chapter 5 states before any test result (on a tie, the larger mu) picks 1; chapter 5 shows
  both over three seeds.

and in three matters of implementation:

* **Mini-batches.** The paper updates after every pattern. We update after ``--batch-size``
  patterns (default 10) using the *summed* loss of the batch, which equals the paper's
  successive single-pattern steps to first order; a pass is then fast enough on a CPU.
* **Order.** A new seeded random order each pass (the paper used one fixed random order).
* **Distortions on the fly.** Instead of a fixed set of 540,000 distorted copies added to the
  60,000 originals, each presentation of a pattern is distorted with probability 0.9
  (= 540k / 600k) with fresh random parameters. With the default ``--copies 1`` a pass
  presents each image once, so 20 passes see 1.2 million patterns, a tenth of the paper's
  12 million; ``--copies 10`` presents each image ten times per pass, the paper's 600,000
  patterns per pass. ``distortion_protocol="fixed"`` is the paper's protocol instead: copy 0 of
  each image is the original, copies 1 to 9 are distorted with parameters drawn once per
  ``(seed, image, copy)`` (:func:`fixed_draws`; no image is stored), so every pass presents the
  same 600,000 patterns in a new order. ``distort_range`` multiplies every range of
  :func:`distort` (2 for the "huge distortions" row of Fig. 9, our guess).

Each pass appends a row to ``log.csv`` (pass, eps, loss, train error, test error, seconds) and
rewrites ``checkpoint.pt`` (written to a temporary name, then renamed): a killed run restarts
from the last finished pass with the same command.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import checkpoint
from .engine import Callback, Task, argmax_labels, argmin_labels, resolve_device, run
from .files import atomic_write
from .layers import RBFOutput
from .losses import DEFAULT_J, map_loss, mle_loss
from .models import PAPER_NETS, STUDY_NETS, LeNet5Paper, count_parameters, lenet_modern
from .optim import SDLM, gauss_newton_diagonal, paper_eps
from .settings import check_same, versions
from .threads import threads

__all__ = [
    "DISTORT_RANGES",
    "EVAL_BATCH",
    "EVAL_BLOCK",
    "LOG_FIELDS",
    "EvalBatches",
    "PaperConfig",
    "PassLog",
    "PassSchedule",
    "affine_distort",
    "benchmark_pass",
    "checkpoint_log",
    "distort",
    "evaluate",
    "fixed_draws",
    "hold_out",
    "load_checkpoint",
    "load_log",
    "make_task",
    "mnist_tensors",
    "paper_inputs",
    "train",
]

LOG_FIELDS = ("pass", "eps", "loss", "train_error", "test_error", "seconds", "eval_seconds")

#: The per-pass evaluation's batches: blocks of ``EVAL_BLOCK`` digits (the batches the committed
#: runs were evaluated in), each cut into batches of ``EVAL_BATCH`` (:class:`EvalBatches`).
EVAL_BLOCK, EVAL_BATCH = 2000, 500


class EvalBatches:
    """``(X, y)`` in the batches the evaluation computes, re-iterable (one pass per epoch).

    The digits go in blocks of ``block``, as the committed runs evaluated them; a full block is
    computed as batches of ``batch``, which keeps a batch's feature maps in cache (LeNet-5's
    evaluation over 70,000 digits: ~4.3 s of CPU instead of ~7.5 s). Every digit's outputs are
    bit-identical either way (checked on all 70,000 digits for LeNet-5, LeNet-1, LeNet-4, the
    fully connected nets and ``modern``). A last, partial block is computed whole, as before:
    a matrix product's rounding can depend on the number of rows (a batch of 137 rows differs
    from 2,000 for the fully connected nets), so it is not cut.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, block: int = EVAL_BLOCK, batch: int = EVAL_BATCH) -> None:
        if len(X) != len(y):
            raise ValueError(f"X and y differ in length: {len(X)} vs {len(y)}")
        if block % batch:
            raise ValueError(f"the block ({block}) must be a multiple of the batch ({batch})")
        self.X, self.y, self.block, self.batch = X, y, block, batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.X), self.block):
            n = min(self.block, len(self.X) - i)
            step = self.batch if n == self.block else n
            for j in range(i, i + n, step):
                yield self.X[j : j + step], self.y[j : j + step]


@dataclass
class PaperConfig:
    """Everything a run depends on; saved with the checkpoint so that a resume cannot drift.

    Defaults are the paper's (cited) except where the module docstring says otherwise.
    """

    # "paper" (LeNet5Paper, RBF + MAP), "modern" (lenet_modern, softmax), or a network of the
    # paper's benchmark (lenet_utils.models.PAPER_NETS: "lenet1", "lenet4", "fc-300", ...), or a
    # reading only the held-out study trains (models.STUDY_NETS: "lenet4-sparse")
    model: str = "paper"
    init: str = "paper"  # Appendix C: ±2.4/F_i as printed; our runs use "sqrt" (±2.4/sqrt(F_i)), see above
    passes: int = 20  # §III.B: 20 passes over the training set
    batch_size: int = 10  # departure: the paper updates after every pattern
    optimizer: str = "sdlm"  # "sdlm" (Appendix C), or torch's "sgd" / "adam" for comparison
    lr: float | None = None  # for sgd / adam; sdlm follows the paper's schedule (paper_eps)
    mu: float = 0.02  # Appendix C; our runs use 1 (and 0.2), see above
    hessian_samples: int = 500  # Appendix C: h_kk re-estimated on 500 patterns before each pass
    output_curvature: str = "mle"  # see lenet_utils.optim
    loss: str = "map"  # "map" (Eq. 9, the paper's) or "mle" (Eq. 8)
    j: float = DEFAULT_J  # Eq. 9 constant; the paper gives no value
    distortions: bool = False  # §III.C
    distort_prob: float = 0.9  # 540,000 distorted among 600,000 patterns
    # with distortions: each pass presents every training image this many times (10 = the
    # paper's 60,000 originals + 540,000 distorted copies per pass, with distort_prob 0.9)
    copies: int = 1
    # "fresh": every presentation draws new distortion parameters (the book's runs); "fixed": the
    # paper's set drawn once -- copy 0 of each image is the original, copies 1.. are distorted
    # with parameters fixed per (seed, image, copy), the same in every pass (distort_prob unused)
    distortion_protocol: str = "fresh"
    # multiplies every range of `distort` (shift, scale, squeeze, shear); the "huge distortions"
    # row of Fig. 9 uses 2 (our guess: the paper gives no ranges)
    distort_range: float = 1.0
    seed: int = 0
    train_subset: int | None = None  # first n training images only (quick experiments)
    test_subset: int | None = None
    # > 0: hold out this many training images (a fixed random choice) and report the error on
    # them in the ``test_error`` column instead of the test set's -- for choosing settings
    # without looking at the test set
    validation: int = 0
    threads: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Data


def paper_inputs(images: torch.Tensor, kind: str) -> torch.Tensor:
    """MNIST's uint8 ``(N, 28, 28)`` digits as a network of the benchmark takes them, on the
    paper's scale (background -0.1, ink 1.175, §II.B): ``(N, 1, S, S)`` float.

    ``kind``: ``"pad32"`` (padded to 32x32, LeNet-5 and LeNet-4), ``"28"`` (as stored),
    ``"crop16in28"`` (LeNet-1: the 20x20 window around the ink,
    :func:`lenet_utils.deslant.crop_to_ink`, i.e. the digit as MNIST size-normalised it,
    subsampled to 16x16 and centred in 28x28), ``"16in28"`` (the whole 28x28 frame subsampled
    to 16x16 and centred in 28x28: the digit ends up about 11 pixels tall), ``"deslant20"``
    (deslanted, :func:`lenet_utils.deslant.deslant`, then cropped to the 20x20 window around
    its ink, :func:`lenet_utils.deslant.crop_to_ink`: our reading of the paper's deslanted
    20x20 images). Subsampling is bilinear with antialiasing (the paper does not say how it
    subsampled).
    """
    from .data import paper_scale

    x = paper_scale(images).unsqueeze(1)  # (N, 1, 28, 28), background -0.1
    if kind == "28":
        return x.contiguous()
    if kind == "pad32":
        return F.pad(x, (2, 2, 2, 2), value=-0.1).contiguous()
    if kind in ("16in28", "crop16in28"):
        from .deslant import ink_box_16, subsample

        # (N, 1, 16, 16): the digit's own 20x20 box, or the whole frame
        small = (
            ink_box_16(x, background=-0.1)
            if kind == "crop16in28"
            else subsample(x, 16, background=-0.1)
        )
        # (N, 1, 28, 28)
        return F.pad(small, (6, 6, 6, 6), value=-0.1).contiguous()
    if kind == "deslant20":
        from .deslant import crop_to_ink, deslant

        x = deslant(x, background=-0.1)
        # (N, 1, 20, 20)
        return crop_to_ink(x, 20, background=-0.1).contiguous()
    raise ValueError(
        f"input kind must be one of {', '.join(map(repr, INPUT_KINDS))}, "
        f"not {kind!r}"
    )


#: the input kinds of :func:`paper_inputs`
INPUT_KINDS: tuple[str, ...] = ("pad32", "28", "crop16in28", "16in28", "deslant20")


def mnist_tensors(
    model: str = "paper", kind: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_train, y_train, X_test, y_test)`` as the model expects them, held in memory.

    ``"paper"``: padded to 32x32, background -0.1, ink 1.175 (§II.B). ``"modern"``: resized to
    32x32 and standardised, as the reproduction project does. A network of
    :data:`lenet_utils.models.PAPER_NETS`: its input kind (:func:`paper_inputs`), or ``kind``
    if given (to compare inputs on held-out digits, :mod:`lenet_utils.fig9.fc_study`).
    """
    from .data import load_data, load_split
    from .models import PAPER_NETS, STUDY_NETS

    if kind is not None and model not in STUDY_NETS:
        raise ValueError(f"an input kind ({kind!r}) is for the networks of PAPER_NETS, not {model!r}")
    if model == "paper":
        train_iter, test_iter = load_data("mnist", 1000, size=32, normalize="paper")
    elif model == "modern":
        train_iter, test_iter = load_data("mnist", 1000, size=32, resize=True, normalize="standard")
    elif model in STUDY_NETS:  # PAPER_NETS and the held-out study's other readings
        kind = kind or STUDY_NETS[model][1]
        (Xtr, ytr), (Xte, yte) = load_split("mnist", True), load_split("mnist", False)
        return paper_inputs(Xtr, kind), ytr, paper_inputs(Xte, kind), yte
    else:
        raise ValueError(f"model must be 'paper', 'modern' or one of {sorted(PAPER_NETS)}, not {model!r}")
    return train_iter.X, train_iter.y, test_iter.X, test_iter.y


def hold_out(
    X: torch.Tensor, y: torch.Tensor, n: int, seed: int = 1998
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a training set into ``(X_rest, y_rest, X_val, y_val)`` with ``n`` images, drawn at
    random with a fixed ``seed`` (the same for every run), held out for validation."""
    if not 0 < n < len(X):
        raise ValueError(f"validation size must be between 1 and {len(X) - 1}, got {n}")
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    rest, val = order[:-n].sort().values, order[-n:].sort().values
    return X[rest], y[rest], X[val], y[val]


#: :func:`distort`'s ranges (``distort_range = 1``): shift in pixels, scale, squeeze, shear
DISTORT_RANGES: dict[str, float] = {"shift": 2.0, "scale": 0.1, "squeeze": 0.1, "shear": 0.2}


def distort(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    prob: float = 0.9,
    shift: float = DISTORT_RANGES["shift"],
    scale: float = DISTORT_RANGES["scale"],
    squeeze: float = DISTORT_RANGES["squeeze"],
    shear: float = DISTORT_RANGES["shear"],
    background: float = -0.1,
) -> torch.Tensor:
    """Random planar affine distortions of a batch (paper §III.C, Fig. 7), in one ``grid_sample``.

    Each image is, with probability ``prob``, mapped by a random affine transformation made of
    a translation (uniform ±``shift`` pixels in x and y), a scaling (factor uniform in
    1 ± ``scale``), a squeezing (x stretched by q and y by 1/q, q uniform in 1 ± ``squeeze``) and
    a horizontal shear (uniform ±``shear``). The paper names these four kinds but gives no
    ranges: ours keep the digits recognisable. Pixels coming from outside are background.

    Args:
        x: ``(B, 1, H, W)`` images with background ``background``.
        generator: the source of randomness (seed it for repeatable runs).

    Returns:
        ``(B, 1, H, W)`` distorted images (a new tensor).
    """
    if x.dim() != 4:
        raise ValueError(f"distort expects (B, C, H, W), got {tuple(x.shape)}")
    B = x.shape[0]
    u = torch.stack([torch.rand(B, generator=generator) for _ in range(5)], 1)  # (B, 5) in [0, 1)
    keep = torch.rand(B, generator=generator) >= prob  # (B,) patterns left as they are
    return affine_distort(x, u, ~keep, shift=shift, scale=scale, squeeze=squeeze, shear=shear, background=background)


def affine_distort(
    x: torch.Tensor,
    u: torch.Tensor,
    apply: torch.Tensor,
    *,
    shift: float = DISTORT_RANGES["shift"],
    scale: float = DISTORT_RANGES["scale"],
    squeeze: float = DISTORT_RANGES["squeeze"],
    shear: float = DISTORT_RANGES["shear"],
    background: float = -0.1,
) -> torch.Tensor:
    """:func:`distort` with given draws: ``u`` ``(B, 5)`` uniforms in [0, 1) pick scale,
    squeeze, shear, x and y shift within the ranges; images where the ``(B,)`` bool ``apply``
    is false are returned unchanged."""
    B, _, H, W = x.shape

    def r(i: int, lo: float, hi: float) -> torch.Tensor:
        return u[:, i] * (hi - lo) + lo

    s = r(0, 1 - scale, 1 + scale)  # (B,) scaling
    q = r(1, 1 - squeeze, 1 + squeeze)  # (B,) squeezing
    k = r(2, -shear, shear)  # (B,) horizontal shear
    tx, ty = r(3, -shift, shift) * 2 / W, r(4, -shift, shift) * 2 / H  # (B,) in grid units ([-1, 1])
    keep = ~apply.cpu()
    sx, sy = s * q, s / q
    # forward map (output = A @ input + t); grid_sample needs the inverse, from output to input
    A = torch.zeros(B, 2, 2)
    A[:, 0, 0], A[:, 0, 1], A[:, 1, 1] = sx, k * sy, sy  # (B, 2, 2): shear x by y after scaling
    t = torch.stack([tx, ty], 1)  # (B, 2)
    A[keep] = torch.eye(2)
    t[keep] = 0
    A_inv = torch.linalg.inv(A)  # (B, 2, 2)
    theta = torch.cat([A_inv, -(A_inv @ t.unsqueeze(2))], 2).to(device=x.device, dtype=x.dtype)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + background  # (B, 1, H, W)


def fixed_draws(seed: int, n: int, copies: int) -> torch.Tensor:
    """The ``distortion_protocol="fixed"`` parameters: ``(n, copies, 5)`` uniforms, drawn once
    from ``seed``; entry ``[i, k]`` depends only on ``(seed, i, k)`` (not on ``n``: row-major
    draws), so copy ``k`` of image ``i`` is the same pattern in every pass."""
    g = torch.Generator().manual_seed(seed * 100_003 + 1_000_000_007)
    return torch.rand(n, copies, 5, generator=g)


# ------------------------------------------------------------------------------------------
# Models, evaluation, checkpoints


def _build(model: str, init: str = "paper") -> nn.Module:
    if model == "paper":
        return LeNet5Paper(init=init)
    if model == "modern":
        return lenet_modern()
    if model in STUDY_NETS:  # PAPER_NETS and the held-out study's other readings (lenet4-sparse)
        return STUDY_NETS[model][0](init=init)
    raise ValueError(f"model must be 'paper', 'modern' or one of {sorted(PAPER_NETS)}, not {model!r}")


def _is_rbf(model: nn.Module) -> bool:
    """Penalty outputs (lower is better): LeNet-5's RBF layer, or the place code of PAPER_NETS."""
    return any(isinstance(m, RBFOutput) for m in model.modules())


@torch.no_grad()
def evaluate(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BLOCK
) -> tuple[float, torch.Tensor]:
    """Error rate of ``model`` on ``(X, y)`` and its predicted labels.

    RBF models predict the class with the smallest penalty, softmax models the largest score.
    ``batch_size``: the block of :class:`EvalBatches` (computed in batches of
    :data:`EVAL_BATCH` when it is a multiple of it).
    """
    was_training = model.training
    model.eval()
    rbf = _is_rbf(model)
    batches = EvalBatches(X, y, batch_size, EVAL_BATCH if batch_size % EVAL_BATCH == 0 else batch_size)
    preds = []
    for xb, _ in batches:
        out = model(xb)  # (b, 10)
        preds.append(out.argmin(1) if rbf else out.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds)
    return (pred != y).sum().item() / len(y), pred  # exact count, as the loop's accuracy


def load_checkpoint(path: str | Path) -> nn.Module:
    """The trained network stored in a ``checkpoint.pt`` written by :func:`train` (eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train it with `python -m lenet_utils train-paper --out {path.parent}`"
        )
    ckpt = checkpoint.load(path, kind="paper")
    model = _build(ckpt["config"]["model"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


def checkpoint_log(path: str | Path) -> list[dict[str, float]]:
    """The log rows stored *in* a checkpoint: the passes its weights have seen."""
    return list(checkpoint.load(path, kind="paper")["metrics"]["log"])


def load_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``log.csv`` written by :func:`train`, as floats (pass as int)."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "pass" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _write_log(rows: list[dict[str, float]], path: Path) -> None:
    lines = [",".join(LOG_FIELDS)]
    for r in rows:
        lines.append(",".join(str(r[k]) if k == "pass" else f"{r[k]:.6g}" for k in LOG_FIELDS))
    atomic_write(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------
# Training


def _loss_fn(cfg: PaperConfig, out: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    if cfg.model == "modern":
        return F.cross_entropy(out, y, reduction=reduction)
    if cfg.loss == "map":
        return map_loss(out, y, cfg.j, reduction)
    if cfg.loss == "mle":
        return mle_loss(out, y, reduction)
    raise ValueError(f"loss must be 'map' or 'mle', not {cfg.loss!r}")


def _make_optimizer(cfg: PaperConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sdlm":
        if not _is_rbf(model):
            raise ValueError("SDLM's curvature estimate is written for the paper's network; use --optimizer adam")
        return SDLM(params, lr=paper_eps(1), mu=cfg.mu)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr if cfg.lr is not None else 0.01)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr if cfg.lr is not None else 1e-3)
    raise ValueError(f"optimizer must be 'sdlm', 'sgd' or 'adam', not {cfg.optimizer!r}")




@contextlib.contextmanager
def _no_mkldnn() -> Iterator[None]:
    """oneDNN off: plain ATen kernels are faster for LeNet's small convolutions on a CPU (measured)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration", category=UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


class PassSchedule(Callback):
    """What the recipe does before each pass (Appendix C), and the pass's patterns.

    A generator seeded ``seed * 100_003 + pass`` draws the order (every image ``copies``
    times, shuffled) and then, with ``distortion_protocol="fresh"``, the distortions, in this
    order: the Hessian's 500 patterns first, then each batch. With ``"fixed"`` the pattern
    ``j`` of the order is copy ``k = j // N`` of image ``i = j % N``: the original for
    ``k = 0``, otherwise distorted by the parameters :func:`fixed_draws` holds for ``(i, k)``.
    With SDLM the Gauss-Newton diagonal is re-estimated on the first ``hessian_samples``
    patterns of the order and epsilon is set from the paper's schedule.
    """

    def __init__(self, cfg: PaperConfig, X: torch.Tensor, y: torch.Tensor) -> None:
        self.cfg, self.X, self.y = cfg, X, y
        self.ranges = {k: v * cfg.distort_range for k, v in DISTORT_RANGES.items()}
        fixed = cfg.distortions and cfg.distortion_protocol == "fixed"
        self.draws = fixed_draws(cfg.seed, len(X), cfg.copies) if fixed else None

    def patterns(self, j: torch.Tensor, g: torch.Tensor | torch.Generator) -> torch.Tensor:
        """The training patterns ``j`` (indices into the ``N * copies`` of a pass), distorted as
        the protocol says; ``g``: the pass's generator (``"fresh"``)."""
        n = len(self.X)
        x = self.X[j % n]
        if not self.cfg.distortions:
            return x
        if self.draws is None:
            return distort(x, g, prob=self.cfg.distort_prob, **self.ranges)
        i, k = j % n, j // n
        return affine_distort(x, self.draws[i, k], k > 0, **self.ranges)

    def epoch_start(self, task: Task, epoch: int) -> None:
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        order = torch.randperm(len(self.X) * cfg.copies, generator=g)
        task.state.update(generator=g, order=order)
        opt = task.optimizer
        if isinstance(opt, SDLM):
            idx = order[: cfg.hessian_samples]
            xh = self.patterns(idx, g).to(task.device)
            with _no_mkldnn():  # as the pass itself
                h = gauss_newton_diagonal(task.model, xh, self.y[idx % len(self.X)].to(task.device),
                                          output_curvature=cfg.output_curvature, j=cfg.j)  # fmt: skip
            opt.set_hessian(h)
            for group in opt.param_groups:
                group["lr"] = paper_eps(epoch)

    def batches(self, task: Task) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The pass drawn by :meth:`epoch_start`, in batches of ``batch_size``."""
        order, B, g = task.state["order"], self.cfg.batch_size, task.state["generator"]
        for i in range(0, len(order), B):
            idx = order[i : i + B]
            yield self.patterns(idx, g), self.y[idx % len(self.X)]  # (B, 1, 32, 32), (B,)


class PassLog(Callback):
    """After each pass: the log row, the checkpoint and ``log.csv`` (atomically), the user's callback."""

    def __init__(self, cfg: PaperConfig, model: nn.Module, rows: list[dict[str, float]], out: Path | None,
                 callback: Callable[[dict[str, float]], None] | None) -> None:  # fmt: skip
        self.cfg, self.model, self.rows, self.out, self.callback = cfg, model, rows, out, callback

    def epoch_end(self, task: Task, epoch: int, metrics: dict[str, Any]) -> bool | None:
        loss = float(metrics["train_loss"])
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged in pass {epoch} (loss {loss})")
        eps = paper_eps(epoch) if self.cfg.optimizer == "sdlm" else task.optimizer.param_groups[0]["lr"]
        row = {"pass": epoch, "eps": eps, "loss": loss, "train_error": 1.0 - float(metrics["train_eval_acc"]),
               "test_error": 1.0 - float(metrics["test_acc"]), "seconds": metrics["seconds"],
               "eval_seconds": metrics["eval_seconds"]}  # fmt: skip
        self.rows.append(row)
        if self.out is not None:
            state = {} if self.cfg.optimizer == "sdlm" else {"optimizer": task.optimizer.state_dict()}
            checkpoint.save(self.out / "checkpoint.pt", self.model, kind="paper", config=self.cfg,
                            metrics={"log": self.rows}, state=state)  # fmt: skip
            _write_log(self.rows, self.out / "log.csv")
        if self.callback is not None:
            self.callback(row)
        return None


def make_task(cfg: PaperConfig, model: nn.Module, Xtr: torch.Tensor, ytr: torch.Tensor,
              evals: dict[str, Any], device: torch.device) -> tuple[Task, PassSchedule]:  # fmt: skip
    """The recipe as a :class:`~lenet_utils.engine.Task` for the book's one loop, and its schedule."""
    opt = _make_optimizer(cfg, model)
    schedule = PassSchedule(cfg, Xtr, ytr)
    reduction = "sum" if isinstance(opt, SDLM) else "mean"  # SDLM: summed loss = B successive steps
    task = Task(model, opt, lambda out, y: _loss_fn(cfg, out, y, reduction), lambda epoch: schedule.batches(task),
                evals=evals, predict=argmin_labels if _is_rbf(model) else argmax_labels,
                reduction=reduction, device=device, train_context=_no_mkldnn)  # fmt: skip
    return task, schedule


#: settings a run may change between its start and a resume
RESUMABLE = ("passes", "threads", "extra")
#: settings the modern network does not use
_MODERN_UNUSED = ("init", "mu", "hessian_samples", "output_curvature", "loss", "j")


def _resume(cfg: PaperConfig, ckpt_path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> list[dict[str, float]]:
    ckpt = checkpoint.load(ckpt_path, kind="paper")
    ignore = RESUMABLE + (_MODERN_UNUSED if cfg.model == "modern" else ())
    check_same({**asdict(PaperConfig()), **ckpt["config"]}, cfg, where=str(ckpt_path), ignore=ignore)
    model.load_state_dict(ckpt["model"])
    if "optimizer" in ckpt["state"] and cfg.optimizer != "sdlm":
        opt.load_state_dict(ckpt["state"]["optimizer"])
    return list(ckpt["metrics"]["log"])


def _prepare(cfg: PaperConfig, data: Any) -> tuple[torch.Tensor, ...]:
    if cfg.copies < 1 or (cfg.copies > 1 and not cfg.distortions):
        raise ValueError(f"copies must be 1, or more with distortions (identical copies add nothing), got {cfg.copies}")
    if cfg.distortion_protocol not in ("fresh", "fixed"):
        raise ValueError(f"distortion_protocol must be 'fresh' or 'fixed', not {cfg.distortion_protocol!r}")
    if cfg.distortion_protocol == "fixed" and (not cfg.distortions or cfg.copies < 2):
        raise ValueError("the fixed protocol needs distortions and copies >= 2 (the original + distorted copies)")
    if not cfg.distort_range > 0:
        raise ValueError(f"distort_range must be positive, got {cfg.distort_range}")
    Xtr, ytr, Xte, yte = data if data is not None else mnist_tensors(cfg.model)
    if cfg.validation:
        Xtr, ytr, Xte, yte = hold_out(Xtr, ytr, cfg.validation)
    if cfg.train_subset:
        Xtr, ytr = Xtr[: cfg.train_subset], ytr[: cfg.train_subset]
    if cfg.test_subset:
        Xte, yte = Xte[: cfg.test_subset], yte[: cfg.test_subset]
    return Xtr, ytr, Xte, yte


def _write_run(out: Path, cfg: PaperConfig, command: str | None, model: nn.Module) -> None:
    run = {"config": asdict(cfg), "command": command, "python": platform.python_version(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "parameters": count_parameters(model), "versions": versions()}  # fmt: skip
    atomic_write(out / "run.json", json.dumps(run, indent=2) + "\n")


def train(
    cfg: PaperConfig,
    out: str | Path | None = None,
    *,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
    command: str | None = None,
    device: str | torch.device | None = "cpu",
    restart: bool = False,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train as configured, on the book's one loop; resumable when ``out`` is given.

    ``out`` holds ``log.csv``, ``checkpoint.pt`` and ``run.json``; when it already holds a
    checkpoint of the same configuration, training continues after its last pass; of another
    configuration, :class:`~lenet_utils.settings.SettingsChangedError` names what changed
    (``restart=True`` deletes it and starts again). ``data``: ``(X_train, y_train, X_test,
    y_test)``, default :func:`mnist_tensors`. ``callback``: called with each pass's log row.
    ``device``: ``"cpu"`` (the committed runs), ``"cuda"``, or ``None`` for CUDA when present.
    Returns the model and the log rows.
    """
    device = resolve_device(device)
    Xtr, ytr, Xte, yte = (t.to(device) for t in _prepare(cfg, data))
    torch.manual_seed(cfg.seed)
    model = _build(cfg.model, cfg.init).to(device)
    evals = {"train_eval": EvalBatches(Xtr, ytr), "test": EvalBatches(Xte, yte)}
    task, schedule = make_task(cfg, model, Xtr, ytr, evals, device)
    out_dir = Path(out) if out is not None else None
    rows: list[dict[str, float]] = []
    if out_dir is not None and restart:
        for name in ("checkpoint.pt", "log.csv", "run.json"):
            (out_dir / name).unlink(missing_ok=True)
    if out_dir is not None and (out_dir / "checkpoint.pt").is_file():
        rows = _resume(cfg, out_dir / "checkpoint.pt", model, task.optimizer)
    with threads(cfg.threads or torch.get_num_threads()):
        if out_dir is not None:
            _write_run(out_dir, cfg, command, model)
        if len(rows) < cfg.passes:
            run(task, cfg.passes, start=len(rows), callbacks=[schedule, PassLog(cfg, model, rows, out_dir, callback)])
    return model, rows


def benchmark_pass(
    batch_size: int = 10, threads_: int | None = None, n: int = 60_000, distortions: bool = False
) -> tuple[float, float]:
    """Time one SDLM training pass of :class:`LeNet5Paper` over ``n`` MNIST images (including
    the 500-pattern curvature estimate), with the settings of the committed runs, on the loop.

    Returns:
        ``(wall-clock seconds, CPU seconds of this process)``. On a shared machine the CPU
        time is the better guide to what the pass costs with the cores to itself.
    """
    cfg = PaperConfig(init="sqrt", mu=0.2, passes=1, batch_size=batch_size, threads=threads_,
                      distortions=distortions, train_subset=n)  # fmt: skip
    Xtr, ytr, _, _ = mnist_tensors("paper")
    torch.manual_seed(0)
    model = LeNet5Paper(init=cfg.init)
    task, schedule = make_task(cfg, model, Xtr[:n], ytr[:n], {}, torch.device("cpu"))
    with threads(threads_ or torch.get_num_threads()):
        t0, c0 = time.perf_counter(), time.process_time()
        run(task, 1, callbacks=[schedule])
        return time.perf_counter() - t0, time.process_time() - c0
