"""The committed shell scripts read as data: their commands, variables and sweep loop.

``data/sweeps/run_all.sh`` is the one list of the ablation suite's sweeps (its ``for name in ...``
loop); the tests and the experiments appendix read that list here rather than keeping a copy.

>>> from pathlib import Path
>>> import tempfile
>>> script = Path(tempfile.mkdtemp()) / "run.sh"
>>> _ = script.write_text("# a comment\\nfor name in lr batch; do\\n  $PY -m x \\\\\\n    --out $name\\ndone\\n")
>>> shell_lines(script)
['for name in lr batch; do', '$PY -m x --out $name', 'done']
>>> suite_names(script)
['lr', 'batch']
>>> expand('$PY -m x --out "$name"', {"PY": "python", "name": "lr"})
'python -m x --out lr'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["expand", "shell_lines", "suite_names"]


def shell_lines(path: Path) -> list[str]:
    """The commands of a shell script: continuation lines joined, runs of spaces collapsed,
    comments and blank lines dropped."""
    text = Path(path).read_text().replace("\\\n", " ")
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def expand(line: str, variables: Mapping[str, str]) -> str:
    """``line`` with ``$NAME``, ``${NAME}`` and ``"$NAME"`` replaced by ``variables[NAME]``."""
    for name, value in variables.items():
        line = re.sub(rf'"?\$(\{{{name}\}}|{name}\b)"?', lambda _m, v=value: v, line)
    return line


def suite_names(script: Path) -> list[str]:
    """The sweeps a script such as ``run_all.sh`` runs, in its order: the words of its
    ``for name in ...; do`` loop.

    Raises ``ValueError`` naming the script when it has no such loop."""
    for line in shell_lines(script):
        if m := re.fullmatch(r"for name in (.+?); do", line):
            return m[1].split()
    raise ValueError(f"{script}: no `for name in ...; do` loop listing the sweeps to run")
