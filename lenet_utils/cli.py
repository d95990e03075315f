"""The command line: ``python -m lenet_utils COMMAND [options]``.

Each command lives in the module that does the work, as a ``main(argv) -> int``
function; this file only dispatches, importing the module lazily so that
``--help`` is quick.

=============  ==========================  ==========================================
command        module                      what it does
=============  ==========================  ==========================================
fetch          :mod:`lenet_utils.data`     put MNIST / Fashion-MNIST in ``data/``
train          :mod:`lenet_utils.train`    train a LeNet variant, save best checkpoint
train-paper    :mod:`lenet_utils.paper`    the 1998 recipe: SDLM, 20 passes, RBF/MAP
sweep          :mod:`lenet_utils.sweep`    run an ablation grid, resumable CSV
bench          :mod:`lenet_utils.bench`    our trainer against ``d2l.train_ch6``
=============  ==========================  ==========================================
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("lenet_utils.data", "put MNIST / Fashion-MNIST into data/, checksummed"),
    "train": ("lenet_utils.train", "train a LeNet variant (d2l, modern, paper, theano)"),
    "train-paper": ("lenet_utils.paper", "train the 1998 LeNet-5 with the paper's recipe"),
    "sweep": ("lenet_utils.sweep", "run an ablation sweep into a resumable CSV"),
    "bench": ("lenet_utils.bench", "benchmark our trainer against d2l.train_ch6"),
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
    if name == "fetch":  # data.main has its own sub-command
        rest = ["fetch", *rest]
    return int(module.main(rest) or 0)
