"""The rows of the paper's Fig. 9, what runs each, and the results file they are appended to.

:data:`ROWS` lists every classifier of Fig. 9 with the paper's test error (as printed in Fig. 9
and on the MNIST page that cites it). :func:`run_row` trains and tests one row once (one seed)
on MNIST (or on the first ``train_subset`` / ``test_subset`` digits: quick runs, tests) and
returns one results row; :func:`append_result` adds it to a CSV through
:class:`lenet_utils.sweep.ResultsFile` (whole rows, ``fsync``\\ ed, a torn last line cut off on
reopening) with one writer per file (:func:`lenet_utils.sweep.one_writer`).
``python -m lenet_utils fig9 ROW`` does both.

A row with ``family=None`` is not run; its ``note`` says why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import load_split
from ..settings import versions
from .base import Fitted, flat_inputs
from .reject import rejection_for_error

__all__ = ["COLUMNS", "ROWS", "Row", "append_result", "get_row", "run_row"]


@dataclass(frozen=True)
class Row:
    """One bar of Fig. 9.

    Attributes:
        name: our identifier (the command's ``ROW``).
        classifier: the paper's label.
        preprocessing: the paper's: ``none``, ``deslant``, ``16x16``, ``dist``, ``huge dist``.
        paper_error: the paper's test error, percent.
        family: ``"classic"`` (a fitter of this package), ``"net"`` (the 1998 recipe),
            ``"features"`` (a fitter on a trained LeNet-4's 120 features, :mod:`.features`),
            ``"boost"`` (three LeNet-4s, :mod:`.boost`), or ``None`` (not implemented: see ``note``).
        randomised: whether the seed changes the result (deterministic rows need one run).
        spec: for ``classic``, ``(fitter, input kind)``; for ``net``, ``(model, distortions, copies)``
            and optionally a dict of further :class:`~lenet_utils.paper.PaperConfig` settings;
            for ``features``, ``(fitter,)``; for ``boost``, ``(model, copies of net 1)``.
        note: our guesses in one line, or why the row is not run.
    """

    name: str
    classifier: str
    preprocessing: str
    paper_error: float
    family: str | None
    randomised: bool
    spec: tuple[Any, ...] = ()
    note: str = ""


def _fitter(name: str) -> Callable[..., Fitted]:
    from . import knn, linear, polynomial, rbf, svm, tangent

    return {"linear": linear.fit_linear, "pairwise": linear.fit_pairwise, "knn": knn.fit_knn,
            "tangent": tangent.fit_tangent_knn, "pca_quadratic": polynomial.fit_pca_quadratic,
            "rbf": rbf.fit_rbf, "svm": svm.fit_svm_poly, "virtual_svm": svm.fit_virtual_svm}[name]  # fmt: skip


_HUGE = {"distort_range": 2.0}
_FIXED = {"distortion_protocol": "fixed"}
_FIXED_NOTE = "the paper's protocol: the original + 9 distorted copies of each image, drawn once, reused every pass"

ROWS: tuple[Row, ...] = (
    Row("linear", "linear classifier (one-layer net)", "none", 12.0, "classic", False, ("linear", "raw"),
        "least squares to ±1 targets"),
    Row("linear-deslant", "linear classifier (one-layer net)", "deslant", 8.4, "classic", False,
        ("linear", "deslant"), "least squares to ±1 targets"),
    Row("pairwise-deslant", "pairwise linear classifier", "deslant", 7.6, "classic", False,
        ("pairwise", "deslant"), "45 least-squares units, voting"),
    Row("knn", "k-NN, Euclidean (L2)", "none", 5.0, "classic", False, ("knn", "raw"), "k = 3"),
    Row("knn-deslant", "k-NN, Euclidean (L2)", "deslant", 2.4, "classic", False, ("knn", "deslant"), "k = 3"),
    Row("pca40-quadratic", "40 PCA + quadratic classifier", "none", 3.3, "classic", False,
        ("pca_quadratic", "raw"), "821 inputs: 1 + 40 + 780 products; least squares"),
    Row("rbf1000", "1000 RBF + linear classifier", "none", 3.6, "classic", True, ("rbf", "raw"),
        "k-means per class (seeded), widths from clusters, ridge"),
    Row("knn-tangent", "k-NN, tangent distance", "16x16", 1.1, "classic", False, ("tangent", "16x16"),
        "k = 1 among 200 Euclidean candidates, Simard's 7 tangents, no smoothing (sigma 0.25), the whole frame "
        "at 16x16; input, sigma and candidates chosen on held-out training digits"),
    Row("svm-poly4-deslant", "SVM, polynomial degree 4", "deslant", 1.1, "classic", False, ("svm", "deslant"),
        "libsvm, (gamma x.z + 1)^4, C = 10; minutes on 60,000 digits"),
    Row("rs-svm-poly5-deslant", "reduced-set SVM, polynomial degree 5", "deslant", 1.0, None, False,
        note="not run: Burges's reduced-set method replaces each machine's support-vector expansion by a few "
        "synthetic vectors found by a non-convex search; it trades recognition speed for the error the figure "
        "compares (about the plain SVM's), and has no maintained implementation"),
    Row("virtual-svm-poly9-dist", "virtual SVM, polynomial degree 9", "dist", 0.8, "classic", False,
        ("virtual_svm", "raw"), "libsvm, (gamma x.z + 1)^9, gamma held out, C = 10, raw digits; a second SVM on "
        "the first's support vectors + each shifted 1 px up, down, left, right; about 5 CPU-minutes on 60,000 digits"),
    Row("fc-300", "28x28-300-10", "none", 4.7, "net", True, ("fc-300", False, 1)),
    Row("fc-300-dist", "28x28-300-10", "dist", 3.6, "net", True, ("fc-300", True, 10)),
    Row("fc20-300-deslant", "20x20-300-10", "deslant", 1.6, "net", True, ("fc20-300", False, 1),
        "deslanted, then cropped to the 20x20 window around its ink"),
    Row("fc-1000", "28x28-1000-10", "none", 4.5, "net", True, ("fc-1000", False, 1)),
    Row("fc-1000-dist", "28x28-1000-10", "dist", 3.8, "net", True, ("fc-1000", True, 10)),
    Row("fc-300-100", "28x28-300-100-10", "none", 3.05, "net", True, ("fc-300-100", False, 1)),
    Row("fc-300-100-dist", "28x28-300-100-10", "dist", 2.5, "net", True, ("fc-300-100", True, 10)),
    Row("fc-500-150", "28x28-500-150-10", "none", 2.95, "net", True, ("fc-500-150", False, 1)),
    Row("fc-500-150-dist", "28x28-500-150-10", "dist", 2.45, "net", True, ("fc-500-150", True, 10)),
    Row("lenet1", "LeNet-1", "16x16", 1.7, "net", True, ("lenet1", False, 1)),
    Row("lenet4", "LeNet-4", "none", 1.1, "net", True, ("lenet4", False, 1)),
    Row("lenet4-knn", "LeNet-4 with k-NN in place of the last layer", "none", 1.1, "features", True, ("knn",),
        "the lenet4 row's net; Euclidean k-NN on its 120 features, k on 10,000 held-out training digits"),
    Row("lenet4-local", "LeNet-4 with local learning in place of the last layer", "none", 1.1, "features", True,
        ("local",), "the lenet4 row's net; per digit a ridge classifier on its K nearest; K, decay held out"),
    Row("lenet5", "LeNet-5", "none", 0.95, "net", True, ("paper", False, 1)),
    Row("lenet5-huge-dist", "LeNet-5", "huge distortions", 0.85, "net", True, ("paper", True, 10, _HUGE),
        "the book's distortion ranges doubled (shift ±4 px, scale and squeeze ±20%, shear ±0.4): the paper gives none"),
    Row("lenet5-dist", "LeNet-5", "dist", 0.8, "net", True, ("paper", True, 10)),
    Row("lenet5-dist-fixed", "LeNet-5", "dist", 0.8, "net", True, ("paper", True, 10, _FIXED), _FIXED_NOTE),
    Row("fc-300-dist-fixed", "28x28-300-10", "dist", 3.6, "net", True, ("fc-300", True, 10, _FIXED), _FIXED_NOTE),
    Row("fc-1000-dist-fixed", "28x28-1000-10", "dist", 3.8, "net", True, ("fc-1000", True, 10, _FIXED),
        _FIXED_NOTE),
    Row("fc-300-100-dist-fixed", "28x28-300-100-10", "dist", 2.5, "net", True, ("fc-300-100", True, 10, _FIXED),
        _FIXED_NOTE),
    Row("fc-500-150-dist-fixed", "28x28-500-150-10", "dist", 2.45, "net", True, ("fc-500-150", True, 10, _FIXED),
        _FIXED_NOTE),
    Row("boosted-lenet4-dist", "boosted LeNet-4", "dist", 0.7, "boost", True, ("lenet4", 10),
        "3 LeNet-4s; nets 2, 3 on up to 60,000 filtered distorted digits each; penalties summed"),
)

COLUMNS = ["run_id", "row", "classifier", "preprocessing", "paper_error_pct", "error_pct", "seed", "train_size",
           "test_size", "passes", "train_cpu_seconds", "test_cpu_seconds", "macs_per_image", "parameters",
           "info", "numerics", "command", "reject_for_0_5_pct"]  # fmt: skip
#: the columns of results files written before the rejection column (read with it empty)
OLD_COLUMNS = COLUMNS[:-1]


def get_row(name: str) -> Row:
    """The row called ``name``; a ``ValueError`` listing the names otherwise."""
    for r in ROWS:
        if r.name == name:
            return r
    raise ValueError(f"unknown Fig. 9 row {name!r}; `python -m lenet_utils fig9 --list` shows them")


def run_id(row: str, seed: int, train_size: int, test_size: int, passes: int | str) -> str:
    """The key of one run in the results file; a network trained with other settings than the
    book's LeNet-5 runs says which (:func:`~lenet_utils.fig9.nets.recipe_tag`)."""
    tag = _recipe_tag(get_row(row))
    return f"{row}|seed={seed}|train={train_size}|test={test_size}|passes={passes}" + (f"|{tag}" if tag else "")


def _recipe_tag(row: Row) -> str:
    """The recipe tag of the network a row trains (the ``lenet4`` net of the features rows)."""
    from .nets import recipe_tag

    if row.family in ("net", "boost"):
        return recipe_tag(row.spec[0])
    return recipe_tag("lenet4") if row.family == "features" else ""


def run_tag(name: str, seed: int, train_subset: int | None, test_subset: int | None, passes: int,
            recipe: str = "") -> str:  # fmt: skip
    """The name of a network run's folder (under ``run_dir``); ``recipe``: settings that differ
    from the book's LeNet-5 runs, if any (:func:`folder_recipe`)."""
    return f"{name}_seed{seed}" + (f"_n{train_subset}" if train_subset else "") + (
        f"_t{test_subset}" if test_subset else "") + (f"_p{passes}" if passes != 20 else "") + (
        f"_{recipe}" if recipe else "")  # fmt: skip


def folder_recipe(model: str) -> str:
    """``model``'s :func:`~lenet_utils.fig9.nets.recipe_tag` as a folder name part (``"mu0.1"``)."""
    from .nets import recipe_tag

    return recipe_tag(model).replace("=", "").replace("|", "_")


def net_folder(row: Row, seed: int, train_subset: int | None, test_subset: int | None, passes: int) -> str:
    """The run folder's name of a row that trains a network (``net``, ``boost``, or ``lenet4`` for
    the features rows): :func:`run_tag` with that network's recipe."""
    return run_tag(row.name, seed, train_subset, test_subset, passes, folder_recipe(row.spec[0]))


def _run_classic(row: Row, seed: int, train_subset: int | None, test_subset: int | None) -> dict[str, Any]:
    fitter_name, kind = row.spec
    Xtr, ytr = load_split("mnist", True)
    Xte, yte = load_split("mnist", False)
    if train_subset:
        Xtr, ytr = Xtr[:train_subset], ytr[:train_subset]
    if test_subset:
        Xte, yte = Xte[:test_subset], yte[:test_subset]
    kwargs = {"seed": seed} if row.randomised else {}
    c0 = time.process_time()
    fitted = _fitter(fitter_name)(flat_inputs(Xtr, kind), ytr, **kwargs)  # preparing the digits counts
    train_cpu = time.process_time() - c0
    c0 = time.process_time()
    if fitted.decide is None:
        pred, reject = fitted.predict(flat_inputs(Xte, kind)), ""
    else:
        pred, confidence = fitted.decide(flat_inputs(Xte, kind))
        reject = rejection_for_error(confidence, pred != yte)
    test_cpu = time.process_time() - c0
    error = (pred != yte).sum().item() / len(yte)
    return {"error": error, "train_cpu_seconds": train_cpu, "test_cpu_seconds": test_cpu,
            "macs": fitted.macs, "parameters": fitted.parameters, "train_size": len(Xtr),
            "test_size": len(Xte), "info": fitted.info, "reject_pct": reject}  # fmt: skip


def run_row(
    name: str,
    *,
    seed: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
    passes: int = 20,
    run_dir: str | Path | None = None,
    threads: int | None = 1,
    command: str = "",
) -> dict[str, Any]:
    """Train and test row ``name`` once; the results row (the :data:`COLUMNS`).

    ``passes``, ``run_dir`` (a folder per run, for resuming) and ``threads`` concern the
    networks only. Deterministic rows refuse a seed other than 0 (it would repeat seed 0's run).
    """
    row = get_row(name)
    if row.family is None:
        raise ValueError(f"row {name!r} cannot be run: {row.note}")
    if seed and not row.randomised:
        raise ValueError(f"row {name!r} is deterministic: run it once, with seed 0")
    if row.family == "classic":
        with torch.no_grad():
            import threadpoolctl  # scikit-learn's dependency: cap BLAS threads like torch's

            with threadpoolctl.threadpool_limits(threads):
                prev = torch.get_num_threads()
                torch.set_num_threads(threads or prev)
                try:
                    res = _run_classic(row, seed, train_subset, test_subset)
                finally:
                    torch.set_num_threads(prev)
        n_passes: int | str = ""
    elif row.family in ("features", "boost"):
        from .boost import run_boost
        from .features import run_features

        run = run_features if row.family == "features" else run_boost
        res = run(row, seed=seed, train_subset=train_subset, test_subset=test_subset, passes=passes,
                  run_dir=run_dir, threads=threads, command=command or None)  # fmt: skip
        n_passes = passes
    else:
        from .nets import train_net

        model, distortions, copies, *config = row.spec
        tag = net_folder(row, seed, train_subset, test_subset, passes)
        out = Path(run_dir) / tag if run_dir is not None else None
        res = train_net(model, seed=seed, distortions=distortions, copies=copies, passes=passes,
                        train_subset=train_subset, test_subset=test_subset, out=out, threads=threads,
                        command=command or None, **(config[0] if config else {}))  # fmt: skip
        n_passes = passes
    return {
        "run_id": run_id(name, seed, res["train_size"], res["test_size"], n_passes),
        "row": name, "classifier": row.classifier, "preprocessing": row.preprocessing,
        "paper_error_pct": row.paper_error, "error_pct": round(100 * res["error"], 4), "seed": seed,
        "train_size": res["train_size"], "test_size": res["test_size"], "passes": n_passes,
        "train_cpu_seconds": round(res["train_cpu_seconds"], 2), "test_cpu_seconds": round(res["test_cpu_seconds"], 2),
        "macs_per_image": res["macs"], "parameters": res["parameters"],
        "info": json.dumps(res["info"], sort_keys=True), "numerics": versions()["numerics"], "command": command,
        "reject_for_0_5_pct": _pct(res.get("reject_pct", "")),
    }  # fmt: skip


def _pct(v: float | str) -> float | str:
    return round(v, 2) if isinstance(v, float) else v


def append_result(out: str | Path, result: dict[str, Any], wait: float = 60.0) -> bool:
    """Append ``result`` to the CSV ``out`` unless its ``run_id`` is there; ``True`` if written.

    One process writes a file at a time (:func:`~lenet_utils.sweep.one_writer`): two workers of
    ``data/fig9/queue.sh`` finishing together take turns; after ``wait`` seconds of waiting the
    :class:`~lenet_utils.sweep.SweepBusyError` is raised.
    """
    from ..sweep import ResultsFile, SweepBusyError, one_writer

    out = Path(out)
    deadline = time.monotonic() + wait
    while True:
        try:
            with one_writer(out):
                upgrade_results_file(out)
                results = ResultsFile(out, COLUMNS)
                if result["run_id"] in results.done():
                    return False
                results.append(result)
            return True
        except SweepBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def already_done(out: str | Path, rid: str) -> bool:
    """Whether the CSV ``out`` already holds the run ``rid`` (read without locking)."""
    out = Path(out)
    return out.is_file() and any(r["run_id"] == rid for r in read_results(out))


def _header(path: Path) -> list[str]:
    import csv

    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def read_results(path: str | Path) -> list[dict[str, str]]:
    """The rows of a results CSV with every one of :data:`COLUMNS`; a file written before the
    rejection column (:data:`OLD_COLUMNS`) reads with ``reject_for_0_5_pct`` empty."""
    from ..sweep import ResultsFile

    path = Path(path)
    if _header(path) == OLD_COLUMNS:
        import csv

        with open(path, newline="") as f:
            return [{**r, "reject_for_0_5_pct": ""} for r in csv.DictReader(f)]
    return ResultsFile(path, COLUMNS).rows


def upgrade_results_file(path: str | Path) -> bool:
    """Rewrite a results CSV of :data:`OLD_COLUMNS` with the rejection column (empty in the old
    rows), in one atomic rename; ``True`` if it was rewritten. Other files are left alone."""
    import csv
    import io

    from ..files import atomic_write

    path = Path(path)
    if not path.is_file() or _header(path) != OLD_COLUMNS:
        return False
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(read_results(path))
    atomic_write(path, buf.getvalue())
    return True
