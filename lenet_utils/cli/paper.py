"""``python -m lenet_utils train-paper ...``: the 1998 recipe (:func:`lenet_utils.paper.train`)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .validate import nonneg_int, positive_float, positive_int

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..models import PAPER_NETS
    from ..paper import PaperConfig

    d = PaperConfig()
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils train-paper",
        description="Train LeNet-5 with the 1998 recipe (RBF output, MAP loss, SDLM, 20 passes); resumable.",
    )
    p.add_argument("--passes", type=positive_int, default=d.passes, help="passes over the training set (paper: 20)")
    p.add_argument("--distortions", action="store_true", help="random affine distortions (§III.C)")
    p.add_argument("--copies", type=positive_int, default=d.copies,
                   help="with --distortions: presentations of each image per pass (paper: 10)")  # fmt: skip
    p.add_argument("--out", default=None, help="output folder (default data/paper/plain or data/paper/distortions)")
    p.add_argument("--restart", action="store_true", help="delete a run of other settings in --out, start again")
    p.add_argument("--model", choices=["paper", "modern", *PAPER_NETS], default=d.model,
                   help="'modern': ReLU/max-pool/softmax; lenet1, lenet4, fc-*: the paper's benchmark (Fig. 9)")
    p.add_argument("--init", choices=["sqrt", "paper"], default=d.init, help="±2.4/sqrt(F_i) or ±2.4/F_i (as printed)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="patterns per update (paper: 1)")
    p.add_argument("--optimizer", choices=["sdlm", "sgd", "adam"], default=None, help="default sdlm (adam: modern)")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate for sgd/adam")
    p.add_argument("--loss", choices=["map", "mle"], default=d.loss, help="Eq. 9 (paper) or Eq. 8")
    p.add_argument("--j", type=positive_float, default=d.j, help="the constant j of Eq. 9")
    p.add_argument("--mu", type=positive_float, default=d.mu, help="SDLM damping (paper: 0.02)")
    p.add_argument("--output-curvature", choices=["mle", "map"], default=d.output_curvature)
    p.add_argument("--seed", type=nonneg_int, default=d.seed)
    p.add_argument("--train-subset", type=positive_int, default=None, help="first n training images only")
    p.add_argument("--test-subset", type=positive_int, default=None, help="first n test images only")
    p.add_argument("--validation", type=nonneg_int, default=0, metavar="N",
                   help="hold out N training images and report their error instead of the test set's")  # fmt: skip
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu (default, as the committed runs) or cuda")
    p.add_argument("--bench", action="store_true", help="time one training pass and print it; train nothing")
    return p


def _bench(args: argparse.Namespace) -> int:
    import torch

    from ..paper import benchmark_pass

    n = args.train_subset or 60_000
    wall, cpu = benchmark_pass(args.batch_size, args.threads, n, args.distortions)
    print(f"one SDLM pass over {n:,} images (batch {args.batch_size}, {args.threads or torch.get_num_threads()} "
          f"threads, distortions={args.distortions}): {wall:.1f} s wall clock, {cpu:.1f} s CPU; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..data import DataError
    from ..paper import PaperConfig, train
    from ..settings import SettingsChangedError

    parser = build_parser()
    a = parser.parse_args(argv)
    if a.copies > 1 and not a.distortions:
        parser.error("--copies needs --distortions (identical copies add nothing)")
    if a.bench:
        return _bench(a)
    cfg = PaperConfig(model=a.model, init=a.init, passes=a.passes, batch_size=a.batch_size,
                      optimizer=a.optimizer or ("sdlm" if a.model == "paper" else "adam"), lr=a.lr, mu=a.mu,
                      output_curvature=a.output_curvature, loss=a.loss, j=a.j, distortions=a.distortions,
                      copies=a.copies, seed=a.seed, train_subset=a.train_subset, test_subset=a.test_subset,
                      validation=a.validation, threads=a.threads)  # fmt: skip
    out = a.out or str(Path("data") / "paper" / ("distortions" if a.distortions else "plain"))
    words = list(argv if argv is not None else sys.argv[2:])
    command = "python -m lenet_utils train-paper " + " ".join(shlex.quote(w) for w in words)
    held = "val" if cfg.validation else "test"

    def show(row: dict[str, float]) -> None:
        print(f"pass {row['pass']:2d}  eps {row['eps']:.0e}  loss {row['loss']:.4f}  "
              f"train err {100 * row['train_error']:.2f}%  {held} err {100 * row['test_error']:.2f}%  "
              f"{row['seconds']:.0f}s (+{row['eval_seconds']:.0f}s eval)", flush=True)  # fmt: skip

    print(f"training {cfg.model} -> {out}: {json.dumps(asdict(cfg))}", flush=True)
    try:
        _, rows = train(cfg, out, callback=show, command=command, device=a.device, restart=a.restart)
    except (DataError, SettingsChangedError, ValueError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if rows:
        print(f"done: {len(rows)} passes, {held} error {100 * rows[-1]['test_error']:.2f}%")
    return 0
