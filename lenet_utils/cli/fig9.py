"""``python -m lenet_utils fig9 ROW ...``: one row of the paper's Fig. 9 (:mod:`lenet_utils.fig9`)."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .validate import nonneg_int, positive_int

__all__ = ["build_parser", "main"]

DEFAULT_OUT = Path("data") / "results" / "fig9.csv"
DEFAULT_RUNS = Path("data") / "fig9"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lenet_utils fig9",
        description="Train and test one classifier of the paper's Fig. 9 on MNIST; append one CSV row "
        "per (classifier, seed). --list shows the rows and the paper's errors.",
    )
    p.add_argument("row", nargs="?", help="the row to run (see --list)")
    p.add_argument("--list", action="store_true", help="print the rows with the paper's test errors and exit")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (randomised rows only; default 0)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results CSV (default {DEFAULT_OUT})")
    p.add_argument("--train-subset", type=positive_int, default=None, help="first n training digits only")
    p.add_argument("--test-subset", type=positive_int, default=None, help="first n test digits only")
    p.add_argument("--passes", type=positive_int, default=20, help="networks: passes of the recipe (paper: 20)")
    p.add_argument("--run-dir", default=str(DEFAULT_RUNS),
                   help=f"networks: folder of resumable run folders (default {DEFAULT_RUNS})")  # fmt: skip
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default 1)")
    p.add_argument("--fc-validation", metavar="CSV", default=None,
                   help="instead of a row: the fully connected nets' mu study on 10,000 held-out training "
                   "digits (lenet_utils.fig9.fc_study), appended to CSV; with --models, --mus, --passes")
    p.add_argument("--models", default="fc-300", help="--fc-validation: comma-separated nets (default fc-300)")
    p.add_argument("--mus", default="1,0.1,0.02", help="--fc-validation: comma-separated mu (default 1,0.1,0.02)")
    p.add_argument("--inputs", default=None,
                   help="--fc-validation: comma-separated input kinds to try (default: each net's own); "
                   "--tangent-validation: 16x16 and/or crop16 (default 16x16)")  # fmt: skip
    p.add_argument("--tangent-validation", metavar="CSV", default=None,
                   help="instead of a row: the tangent-distance k-NN's settings on held-out training digits "
                   "(prototypes 0-49,999, held out 50,000-59,999; lenet_utils.fig9.tangent_study), appended to "
                   "CSV; with --inputs, --sigmas, --prefilters, --train-subset (prototypes), --held-out")  # fmt: skip
    p.add_argument("--sigmas", default="1", help="--tangent-validation: comma-separated smoothing sigmas (default 1)")
    p.add_argument("--prefilters", default="100",
                   help="--tangent-validation: comma-separated Euclidean candidate counts (default 100)")  # fmt: skip
    p.add_argument("--held-out", type=positive_int, default=None,
                   help="--tangent-validation: the first n of the 10,000 held-out digits only")  # fmt: skip
    p.add_argument("--fill-rejection", nargs="?", const="net", choices=["net", "classic", "all"], default=None,
                   help="instead of running a row: fill the rejection column of --out's rows written before it "
                   "(net: finished networks from --run-dir, tested again; classic: deterministic rows "
                   "refitted; a row whose test error does not come out as stored is left empty, reported)")  # fmt: skip
    return p


def _positive_list(text: str, option: str, kind: type, example: str, rule: str) -> list:
    """The comma-separated positive numbers of ``option`` (``kind``: ``float`` or ``int``); a
    ``ValueError`` names the bad value (``rule`` says what a value must be)."""
    values = []
    for word in text.split(","):
        try:
            value = kind(word)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{option}: {word!r} is not {what} (give e.g. {option} {example})") from None
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{option}: {rule}, got {word}")
        values.append(value)
    return values


def _study_lists(a: argparse.Namespace) -> tuple[list[str], list[float], list[str] | None]:
    """--models, --mus and --inputs of --fc-validation, checked: a ``ValueError`` names the bad value."""
    from ..models import STUDY_NETS
    from ..paper import INPUT_KINDS

    models = a.models.split(",")
    for m in models:
        if m not in STUDY_NETS:
            raise ValueError(f"--models: {m!r} is not a network of the study; choose among {', '.join(STUDY_NETS)}")
    mus = _positive_list(a.mus, "--mus", float, "1,0.1", "the damping must be positive")
    inputs = a.inputs.split(",") if a.inputs else None
    for k in inputs or []:
        if k not in INPUT_KINDS:
            raise ValueError(f"--inputs: {k!r} is not an input kind; choose among {', '.join(INPUT_KINDS)}")
    return models, mus, inputs


def _fc_validation(a: argparse.Namespace, words: list[str]) -> int:
    from ..fig9.fc_study import fc_validation
    from ..sweep import SweepBusyError

    command = "python -m lenet_utils fig9 " + " ".join(shlex.quote(w) for w in words)
    try:
        models, mus, inputs = _study_lists(a)
        rows = fc_validation(models, mus, passes=a.passes, seed=a.seed, train_subset=a.train_subset,
                             out=a.fc_validation, command=command, inputs=inputs)  # fmt: skip
    except (SweepBusyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{r['model']} ({r['input']}) mu {r['mu']:g}: train {r['train_error_pct']:.2f}%, held out "
              f"{r['validation_error_pct']:.2f}% after {r['passes']} passes ({r['cpu_seconds']:.0f} s CPU)")
    return 0


def _tangent_lists(a: argparse.Namespace) -> tuple[list[str], list[float], list[int]]:
    """--inputs, --sigmas and --prefilters of --tangent-validation, checked: a ``ValueError`` names the bad value."""
    from ..fig9.tangent_study import TANGENT_INPUTS

    inputs = a.inputs.split(",") if a.inputs else ["16x16"]
    for k in inputs:
        if k not in TANGENT_INPUTS:
            raise ValueError(f"--inputs: {k!r} is not an input of the tangent distance; choose among "
                             f"{', '.join(TANGENT_INPUTS)}")  # fmt: skip
    sigmas = _positive_list(a.sigmas, "--sigmas", float, "0.5,1", "the smoothing must be a positive number")
    prefilters = _positive_list(a.prefilters, "--prefilters", int, "100,200",
                                "the number of candidates must be at least 1")  # fmt: skip
    return inputs, sigmas, prefilters


def _tangent_validation(a: argparse.Namespace, words: list[str]) -> int:
    from ..fig9.tangent_study import tangent_validation
    from ..sweep import SweepBusyError

    command = "python -m lenet_utils fig9 " + " ".join(shlex.quote(w) for w in words)
    try:
        inputs, sigmas, prefilters = _tangent_lists(a)
        rows = tangent_validation(inputs, sigmas, prefilters, prototypes=a.train_subset, held_out=a.held_out,
                                  threads=a.threads, out=a.tangent_validation, command=command)  # fmt: skip
    except (SweepBusyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"knn-tangent ({r['input']}) sigma {r['sigma']:g}, prefilter {r['prefilter']}: held out "
              f"{r['held_out_error_pct']:.2f}% ({r['prototypes']:,} prototypes, {r['held_out']:,} held out, "
              f"{r['cpu_seconds']:.0f} s CPU)")  # fmt: skip
    return 0


def _list() -> str:
    from ..fig9 import ROWS

    width = max(len(r.name) for r in ROWS)
    lines = [f"{'row':<{width}}  {'paper %':>7}  {'prep.':<16}  classifier / status"]
    for r in ROWS:
        status = "" if r.family else f"  [{r.note}]"
        lines.append(f"{r.name:<{width}}  {r.paper_error:>7.2f}  {r.preprocessing:<16}  {r.classifier}{status}")
    return "\n".join(lines)


def _fill(out: str, run_dir: str, which: str) -> int:
    from ..fig9.reject import fill_rejection
    from ..sweep import SweepBusyError
    from ..threads import threads

    families = {"net": ("net",), "classic": ("classic",), "all": ("net", "classic")}[which]
    try:
        with threads(1):
            filled, refused = fill_rejection(out, run_dir, families=families)
    except (OSError, RuntimeError, SweepBusyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"rejection filled for {len(filled)} rows of {out}" + "".join(f"\n  {rid}" for rid in filled))
    for rid, why in refused.items():
        print(f"error: {rid} left empty: {why} (run the row again to replace it)", file=sys.stderr)
    return 1 if refused else 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..data import DataError
    from ..fig9 import append_result, get_row, run_row
    from ..fig9.rows import already_done, run_id
    from ..settings import SettingsChangedError
    from ..sweep import SweepBusyError

    parser = build_parser()
    a = parser.parse_args(argv)
    if a.list:
        print(_list())
        return 0
    if a.fc_validation:
        return _fc_validation(a, list(argv if argv is not None else sys.argv[2:]))
    if a.tangent_validation:
        return _tangent_validation(a, list(argv if argv is not None else sys.argv[2:]))
    if a.fill_rejection:
        return _fill(a.out, a.run_dir, a.fill_rejection)
    if a.row is None:
        parser.error("give a ROW (python -m lenet_utils fig9 --list shows them)")
    try:
        row = get_row(a.row)
        if row.family is None:
            raise ValueError(f"row {row.name!r} cannot be run: {row.note}")
        if a.seed and not row.randomised:
            raise ValueError(f"row {row.name!r} is deterministic: run it once, with --seed 0")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rid = run_id(row.name, a.seed, min(a.train_subset or 60_000, 60_000), min(a.test_subset or 10_000, 10_000),
                 "" if row.family == "classic" else a.passes)  # fmt: skip
    try:
        if already_done(a.out, rid):
            print(f"{rid} is already in {a.out}: nothing to do")
            return 0
    except ValueError as e:  # a file of other columns, or a corrupted line
        print(f"error: {e}", file=sys.stderr)
        return 1
    words = list(argv if argv is not None else sys.argv[2:])
    command = "python -m lenet_utils fig9 " + " ".join(shlex.quote(w) for w in words)
    try:
        result = run_row(row.name, seed=a.seed, train_subset=a.train_subset, test_subset=a.test_subset,
                         passes=a.passes, run_dir=a.run_dir, threads=a.threads, command=command)  # fmt: skip
        written = append_result(a.out, result)
    except (DataError, SettingsChangedError, SweepBusyError, ValueError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{row.name} seed {a.seed}: test error {result['error_pct']:.2f}% (paper {row.paper_error}%), "
          f"{result['train_cpu_seconds']:.1f} s CPU training, {result['macs_per_image']:,} multiply-adds per digit, "
          f"{result['parameters']:,} stored values"
          + ("" if written else f"; {result['run_id']} was already in {a.out}, not written again"))  # fmt: skip
    return 0
