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

Defaults are the paper's values. The committed runs (``data/paper/README.md``) depart from
them in two settings, each shown necessary by a measurement in chapter 5:

* ``--init sqrt``: initial weights uniform in ±2.4/sqrt(F_i) instead of ±2.4/F_i as printed in
  Appendix C. With the printed range every curvature estimate is far below mu, all steps hit
  eps/mu and the network saturates within one pass.
* ``--mu 1`` (our first full runs: 0.2) instead of 0.02. With our curvature estimate,
  mu = 0.02 lets the steps of units that saturate during pass 1 grow towards eps/mu when h is
  re-estimated, and the second pass makes the network worse (``data/paper/mu_check/``; with
  one pattern per update too, ``data/paper/online_mu002/``). 0.2 and 1 tie on 10,000 held-out
  training images (``--validation``, ``data/paper/mu_val/``); chapter 5 compares both over
  three seeds.

and in three matters of implementation:

* **Mini-batches.** The paper updates after every pattern. We update after ``--batch-size``
  patterns (default 10) using the *summed* loss of the batch, which equals the paper's
  successive single-pattern steps to first order; a pass is then fast enough on a CPU.
* **Order.** A new seeded random order each pass (the paper does not say it reshuffled).
* **Distortions on the fly.** Instead of a fixed set of 540,000 distorted copies added to the
  60,000 originals, each presentation of a pattern is distorted with probability 0.9
  (= 540k / 600k) with fresh random parameters. With the default ``--copies 1`` a pass
  presents each image once, so 20 passes see 1.2 million patterns, a tenth of the paper's
  12 million; ``--copies 10`` presents each image ten times per pass, the paper's 600,000
  patterns per pass.

Each pass appends a row to ``log.csv`` (pass, eps, loss, train error, test error, seconds) and
rewrites ``checkpoint.pt`` (written to a temporary name, then renamed): a killed run restarts
from the last finished pass with the same command.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .files import atomic_torch_save, atomic_write
from .losses import DEFAULT_J, map_loss, mle_loss
from .models import LeNet5Paper, count_parameters, lenet_modern
from .optim import SDLM, gauss_newton_diagonal, paper_eps

__all__ = [
    "LOG_FIELDS",
    "PaperConfig",
    "benchmark_pass",
    "distort",
    "evaluate",
    "hold_out",
    "load_checkpoint",
    "load_log",
    "main",
    "mnist_tensors",
    "train",
]

LOG_FIELDS = ("pass", "eps", "loss", "train_error", "test_error", "seconds", "eval_seconds")


@dataclass
class PaperConfig:
    """Everything a run depends on; saved with the checkpoint so that a resume cannot drift.

    Defaults are the paper's (cited) except where the module docstring says otherwise.
    """

    model: str = "paper"  # "paper" (LeNet5Paper, RBF + MAP) or "modern" (lenet_modern, softmax)
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


def mnist_tensors(model: str = "paper") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_train, y_train, X_test, y_test)`` as the model expects them, held in memory.

    ``"paper"``: padded to 32x32, background -0.1, ink 1.175 (§II.B). ``"modern"``: resized to
    32x32 and standardised, as seed 003 does.
    """
    from .data import load_data

    if model == "paper":
        train_iter, test_iter = load_data("mnist", 1000, size=32, normalize="paper")
    elif model == "modern":
        train_iter, test_iter = load_data("mnist", 1000, size=32, resize=True, normalize="standard")
    else:
        raise ValueError(f"model must be 'paper' or 'modern', not {model!r}")
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


def distort(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    prob: float = 0.9,
    shift: float = 2.0,
    scale: float = 0.1,
    squeeze: float = 0.1,
    shear: float = 0.2,
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
    B, _, H, W = x.shape

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(B, generator=generator) * (hi - lo) + lo

    s = u(1 - scale, 1 + scale)  # (B,) scaling
    q = u(1 - squeeze, 1 + squeeze)  # (B,) squeezing
    k = u(-shear, shear)  # (B,) horizontal shear
    tx, ty = u(-shift, shift) * 2 / W, u(-shift, shift) * 2 / H  # (B,) in grid units ([-1, 1])
    keep = torch.rand(B, generator=generator) >= prob  # (B,) patterns left as they are
    sx, sy = s * q, s / q
    # forward map (output = A @ input + t); grid_sample needs the inverse, from output to input
    A = torch.zeros(B, 2, 2)
    A[:, 0, 0], A[:, 0, 1], A[:, 1, 1] = sx, k * sy, sy  # (B, 2, 2): shear x by y after scaling
    t = torch.stack([tx, ty], 1)  # (B, 2)
    A[keep] = torch.eye(2)
    t[keep] = 0
    A_inv = torch.linalg.inv(A)  # (B, 2, 2)
    theta = torch.cat([A_inv, -(A_inv @ t.unsqueeze(2))], 2).to(x.dtype)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + background  # (B, 1, H, W)


# ------------------------------------------------------------------------------------------
# Models, evaluation, checkpoints


def _build(model: str, init: str = "paper") -> nn.Module:
    if model == "paper":
        return LeNet5Paper(init=init)
    if model == "modern":
        return lenet_modern()
    raise ValueError(f"model must be 'paper' or 'modern', not {model!r}")


def _is_rbf(model: nn.Module) -> bool:
    return isinstance(model, LeNet5Paper)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> tuple[float, torch.Tensor]:
    """Error rate of ``model`` on ``(X, y)`` and its predicted labels.

    RBF models predict the class with the smallest penalty, softmax models the largest score.
    """
    was_training = model.training
    model.eval()
    preds = []
    for i in range(0, len(X), batch_size):
        out = model(X[i : i + batch_size])  # (b, 10)
        preds.append(out.argmin(1) if _is_rbf(model) else out.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds)
    return (pred != y).float().mean().item(), pred


def load_checkpoint(path: str | Path) -> nn.Module:
    """The trained network stored in a ``checkpoint.pt`` written by :func:`train` (eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train it with `python -m lenet_utils train-paper --out {path.parent}`"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = _build(ckpt["config"]["model"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


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


def _train_one_pass(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: PaperConfig,
    X: torch.Tensor,
    y: torch.Tensor,
    pass_number: int,
) -> tuple[float, float]:
    """One pass over ``(X, y)``; returns (mean training loss, seconds)."""
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + pass_number)
    n = len(X) * cfg.copies
    order = torch.randperm(n, generator=g) % len(X)  # every image `copies` times, shuffled
    if isinstance(opt, SDLM):
        # Appendix C: re-estimate the Gauss-Newton diagonal on 500 patterns, set this pass's epsilon.
        idx = order[: cfg.hessian_samples]
        xh = distort(X[idx], g, prob=cfg.distort_prob) if cfg.distortions else X[idx]
        opt.set_hessian(gauss_newton_diagonal(model, xh, y[idx], output_curvature=cfg.output_curvature, j=cfg.j))
        for group in opt.param_groups:
            group["lr"] = paper_eps(pass_number)
    # SDLM: summed loss = B successive per-pattern steps (to first order); sgd/adam: mean loss.
    reduction = "sum" if isinstance(opt, SDLM) else "mean"
    model.train()
    total, t0 = 0.0, time.perf_counter()
    B = cfg.batch_size
    for i in range(0, n, B):
        idx = order[i : i + B]
        xb, yb = X[idx], y[idx]  # (B, 1, 32, 32), (B,)
        if cfg.distortions:
            xb = distort(xb, g, prob=cfg.distort_prob)
        loss = _loss_fn(cfg, model(xb), yb, reduction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * (1 if reduction == "sum" else len(idx))
    seconds = time.perf_counter() - t0
    if not math.isfinite(total):
        raise FloatingPointError(f"training diverged in pass {pass_number} (loss {total})")
    return total / n, seconds


@contextlib.contextmanager
def _no_mkldnn() -> Iterator[None]:
    """oneDNN off: plain ATen kernels are faster for LeNet's small convolutions on a CPU."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration", category=UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def train(
    cfg: PaperConfig,
    out: str | Path | None = None,
    *,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
    command: str | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train as configured; resumable when ``out`` is given.

    Args:
        cfg: the run's settings.
        out: folder for ``log.csv``, ``checkpoint.pt`` and ``run.json``; when it already holds
            a checkpoint of the same configuration, training continues after its last pass.
        data: ``(X_train, y_train, X_test, y_test)``; default :func:`mnist_tensors`.
        callback: called with each pass's log row (e.g. to print it).
        command: the command line to record in ``run.json``.

    Returns:
        The model and the log rows.
    """
    if cfg.copies < 1 or (cfg.copies > 1 and not cfg.distortions):
        raise ValueError(f"copies must be 1, or more with distortions (identical copies add nothing), got {cfg.copies}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    Xtr, ytr, Xte, yte = data if data is not None else mnist_tensors(cfg.model)
    if cfg.validation:
        Xtr, ytr, Xte, yte = hold_out(Xtr, ytr, cfg.validation)
    if cfg.train_subset:
        Xtr, ytr = Xtr[: cfg.train_subset], ytr[: cfg.train_subset]
    if cfg.test_subset:
        Xte, yte = Xte[: cfg.test_subset], yte[: cfg.test_subset]
    torch.manual_seed(cfg.seed)
    model = _build(cfg.model, cfg.init)
    opt = _make_optimizer(cfg, model)
    rows: list[dict[str, float]] = []
    out_dir = Path(out) if out is not None else None
    ckpt_path = out_dir / "checkpoint.pt" if out_dir else None
    if ckpt_path is not None and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        free = {"passes", "threads", "extra"}  # may change between a run and its resume
        if cfg.model == "modern":  # settings the modern network does not use
            free |= {"init", "mu", "hessian_samples", "output_curvature", "loss", "j"}
        saved = {k: v for k, v in {**asdict(PaperConfig()), **ckpt["config"]}.items() if k not in free}
        now = {k: v for k, v in asdict(cfg).items() if k not in free}
        if saved != now:
            diff = {k: (saved.get(k), now.get(k)) for k in now if saved.get(k) != now.get(k)}
            raise ValueError(f"{ckpt_path} was made with other settings {diff}: use another --out or the same options")
        model.load_state_dict(ckpt["model"])
        if "optimizer" in ckpt and cfg.optimizer != "sdlm":
            opt.load_state_dict(ckpt["optimizer"])
        rows = list(ckpt["log"])
    if out_dir is not None:
        run = {
            "config": asdict(cfg),
            "command": command,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "parameters": count_parameters(model),
        }
        atomic_write(out_dir / "run.json", json.dumps(run, indent=2) + "\n")
    for pass_number in range(len(rows) + 1, cfg.passes + 1):
        with _no_mkldnn():  # faster for these small convolutions (measured)
            loss, seconds = _train_one_pass(model, opt, cfg, Xtr, ytr, pass_number)
        t0 = time.perf_counter()
        train_err, _ = evaluate(model, Xtr, ytr)
        test_err, _ = evaluate(model, Xte, yte)
        eps = paper_eps(pass_number) if cfg.optimizer == "sdlm" else opt.param_groups[0]["lr"]
        row = {
            "pass": pass_number,
            "eps": eps,
            "loss": loss,
            "train_error": train_err,
            "test_error": test_err,
            "seconds": seconds,
            "eval_seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        if out_dir is not None:
            state = {"config": asdict(cfg), "model": model.state_dict(), "log": rows}
            if cfg.optimizer != "sdlm":  # SDLM's only state, h, is re-estimated every pass
                state["optimizer"] = opt.state_dict()
            atomic_torch_save(state, ckpt_path)  # type: ignore[arg-type]
            _write_log(rows, out_dir / "log.csv")
        if callback is not None:
            callback(row)
    return model, rows


def benchmark_pass(
    batch_size: int = 10, threads: int | None = None, n: int = 60_000, distortions: bool = False
) -> tuple[float, float]:
    """Time one SDLM training pass of :class:`LeNet5Paper` over ``n`` MNIST images (including
    the 500-pattern curvature estimate), with the settings of the committed runs.

    Returns:
        ``(wall-clock seconds, CPU seconds of this process)``. On a shared machine the CPU
        time is the better guide to what the pass costs with the cores to itself.
    """
    cfg = PaperConfig(
        init="sqrt", mu=0.2, passes=1, batch_size=batch_size, threads=threads, distortions=distortions, train_subset=n
    )
    if threads:
        torch.set_num_threads(threads)
    Xtr, ytr, _, _ = mnist_tensors("paper")
    torch.manual_seed(0)
    model = LeNet5Paper(init=cfg.init)
    opt = _make_optimizer(cfg, model)
    t0, c0 = time.perf_counter(), time.process_time()
    with _no_mkldnn():
        _train_one_pass(model, opt, cfg, Xtr[:n], ytr[:n], 1)
    return time.perf_counter() - t0, time.process_time() - c0


# ------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    d = PaperConfig()
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils train-paper",
        description="Train LeNet-5 with the 1998 recipe (RBF output, MAP loss, SDLM, 20 passes); resumable.",
    )
    p.add_argument("--passes", type=int, default=d.passes, help="passes over the training set (paper: 20)")
    p.add_argument("--distortions", action="store_true", help="random affine distortions (§III.C)")
    p.add_argument(
        "--copies",
        type=int,
        default=d.copies,
        help="with --distortions: presentations of each image per pass (paper: 10 = 60k originals + 540k distorted)",
    )
    p.add_argument("--out", default=None, help="output folder (default data/paper/plain or data/paper/distortions)")
    p.add_argument("--model", choices=["paper", "modern"], default=d.model, help="'modern': ReLU/max-pool/softmax")
    p.add_argument("--init", choices=["sqrt", "paper"], default=d.init, help="±2.4/sqrt(F_i) or ±2.4/F_i (as printed)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="patterns per update (paper: 1)")
    p.add_argument(
        "--optimizer", choices=["sdlm", "sgd", "adam"], default=None, help="default sdlm (paper), adam for modern"
    )
    p.add_argument("--lr", type=float, default=None, help="learning rate for sgd/adam")
    p.add_argument("--loss", choices=["map", "mle"], default=d.loss, help="Eq. 9 (paper) or Eq. 8")
    p.add_argument("--j", type=float, default=d.j, help="the constant j of Eq. 9")
    p.add_argument("--mu", type=float, default=d.mu, help="SDLM damping (paper: 0.02)")
    p.add_argument("--output-curvature", choices=["mle", "map"], default=d.output_curvature)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--train-subset", type=int, default=None, help="first n training images only")
    p.add_argument("--test-subset", type=int, default=None, help="first n test images only")
    p.add_argument(
        "--validation",
        type=int,
        default=0,
        metavar="N",
        help="hold out N training images and report their error instead of the test set's (choosing settings)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--bench", action="store_true", help="time one training pass and print it; train nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lenet_utils train-paper [--passes 20] [--distortions] [--out DIR] ...``."""
    args = _parser().parse_args(argv)
    if args.bench:
        n = args.train_subset or 60_000
        wall, cpu = benchmark_pass(args.batch_size, args.threads, n, args.distortions)
        print(
            f"one SDLM pass over {n:,} images (batch {args.batch_size}, {torch.get_num_threads()} threads, "
            f"distortions={args.distortions}): {wall:.1f} s wall clock, {cpu:.1f} s CPU; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        return 0
    optimizer = args.optimizer or ("sdlm" if args.model == "paper" else "adam")
    cfg = PaperConfig(
        model=args.model,
        init=args.init,
        passes=args.passes,
        batch_size=args.batch_size,
        optimizer=optimizer,
        lr=args.lr,
        mu=args.mu,
        output_curvature=args.output_curvature,
        loss=args.loss,
        j=args.j,
        distortions=args.distortions,
        copies=args.copies,
        seed=args.seed,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        validation=args.validation,
        threads=args.threads,
    )
    out = args.out or str(Path("data") / "paper" / ("distortions" if args.distortions else "plain"))
    command = "python -m lenet_utils train-paper " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:])
    )

    heldout = "val" if cfg.validation else "test"

    def show(row: dict[str, float]) -> None:
        print(
            f"pass {row['pass']:2d}  eps {row['eps']:.0e}  loss {row['loss']:.4f}  "
            f"train err {100 * row['train_error']:.2f}%  {heldout} err {100 * row['test_error']:.2f}%  "
            f"{row['seconds']:.0f}s (+{row['eval_seconds']:.0f}s eval)",
            flush=True,
        )

    print(f"training {cfg.model} -> {out}: {json.dumps(asdict(cfg))}", flush=True)
    _, rows = train(cfg, out, callback=show, command=command)
    if rows:
        print(f"done: {len(rows)} passes, {heldout} error {100 * rows[-1]['test_error']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
