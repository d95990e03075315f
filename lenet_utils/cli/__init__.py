"""The command line: ``python -m lenet_utils COMMAND [options]``.

All argument parsing of the package lives in this sub-package, one module per command; the
work is done by the library (a function taking a settings dataclass or plain values), so that
what a command does can also be called from Python.

=============  ==========================  ==========================================
command        parser                      does the work
=============  ==========================  ==========================================
fetch          :mod:`.fetch`               :func:`lenet_utils.data.fetch`
train          :mod:`.train`               :func:`lenet_utils.runs.train_run`
train-paper    :mod:`.paper`               :func:`lenet_utils.paper.train`
sweep          :mod:`.sweep`               :func:`lenet_utils.sweep.run_sweep`, :mod:`lenet_utils.cluster`
bench          :mod:`.bench`               :mod:`lenet_utils.bench`
predict        :mod:`.predict`             :func:`lenet_utils.predict.predict_files`
robustness     :mod:`.robustness`          :func:`lenet_utils.robustness.evaluate_grid`
fig9           :mod:`.fig9`                :func:`lenet_utils.fig9.run_row`
=============  ==========================  ==========================================
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("lenet_utils.cli.fetch", "put MNIST / Fashion-MNIST into data/, checksummed"),
    "train": ("lenet_utils.cli.train", "train a LeNet variant (d2l, modern, paper, theano)"),
    "train-paper": ("lenet_utils.cli.paper", "train the 1998 LeNet-5 with the paper's recipe"),
    "sweep": ("lenet_utils.cli.sweep", "run an ablation sweep into a resumable CSV (locally or on Ray)"),
    "bench": ("lenet_utils.cli.bench", "benchmark our trainer against d2l.train_ch6"),
    "predict": ("lenet_utils.cli.predict", "classify image files of digits with a trained LeNet (default: 1998's)"),
    "robustness": ("lenet_utils.cli.robustness", "accuracy of trained LeNets on shifted, rotated, noisy... digits"),
    "fig9": ("lenet_utils.cli.fig9", "rerun one classifier of the paper's benchmark (Fig. 9) into a results CSV"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m lenet_utils COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "python -m lenet_utils COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        print(f"\nerror: unknown command {name!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)
