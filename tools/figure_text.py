"""How small each figure's text will look on the site, read from executed notebooks.

    python tools/figure_text.py [chapters/NN_name.ipynb ...]   # default: every chapter

For every figure output (a PNG drawn through lenet_utils.style) and every JavaScript animation
(lenet_utils.widgets.animate), prints the cell, the image's width, the scale the site shows it
at (the text column is lenet_utils.style.COLUMN_PX wide) and its smallest text as displayed;
``SMALL`` marks text under lenet_utils.style.MIN_TEXT_PX and ``NO RECORD`` a PNG not drawn
through lenet_utils.style. Exits 1 if any. The site's browser test
(tests/test_site.py::test_figure_text_is_readable_as_displayed) makes the same check on the
built pages; this is the quick loop while fixing figures.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import nbformat
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lenet_utils.style import COLUMN_PX, METADATA_KEY, MIN_TEXT_PX  # noqa: E402

_ANIMATION = re.compile(r'data-smallest-text="([^"]*)"')
# matplotlib's animation HTML stores each frame's base64 in lines ending with a backslash
_FRAME = re.compile(r'"data:image/png;base64,([A-Za-z0-9+/=\\\n]+)"')


def figures(path: Path) -> list[tuple[int, int, str | None]]:
    """(cell index, image width in px, smallest-text record) for each figure of a notebook."""
    found = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                with Image.open(io.BytesIO(base64.b64decode(data["image/png"]))) as image:
                    found.append((index, image.width, image.info.get(METADATA_KEY)))
            html = data.get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            record, frame = _ANIMATION.search(html), _FRAME.search(html)
            if record and frame:
                png = base64.b64decode(re.sub(r"\\|\n", "", frame[1]))
                with Image.open(io.BytesIO(png)) as image:
                    found.append((index, image.width, record[1]))
    return found


def main(paths: list[str]) -> int:
    notebooks = [Path(p) for p in paths] or sorted((ROOT / "chapters").glob("*.ipynb"))
    bad = 0
    for path in notebooks:
        print(path.name)
        for index, width, record in figures(path):
            scale = min(1.0, COLUMN_PX / width)
            if record is None:
                bad += 1
                print(f"  cell {index:3d}  {width:5d} px  NO RECORD")
                continue
            pixels, _, text = record.partition(" ")
            shown = float(pixels) * scale
            mark = "SMALL" if shown < MIN_TEXT_PX - 0.05 else "ok"
            bad += mark == "SMALL"
            print(f"  cell {index:3d}  {width:5d} px  x{scale:.2f}  {shown:5.1f} px  {mark:5s}  {text!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
