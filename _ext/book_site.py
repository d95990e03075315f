"""Small fixes to the built site, as a local Sphinx extension (listed in _config.yml).

* Every page carried two inline configuration ``<script>`` elements twice (sphinx-thebe's and
  sphinx-togglebutton's, each registered by both Jupyter Book and the theme), which raises
  "Identifier 'THEBE_JS_URL' has already been declared" in every reader's console. After the
  build, each page's head keeps the first copy of every repeated inline script line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_INLINE_SCRIPT = re.compile(r"^\s*<script>.*</script>\s*$")


def dedupe_inline_scripts(html: str) -> str:
    """``html`` without repeated identical one-line inline ``<script>`` elements in its head."""
    seen: set[str] = set()
    kept = []
    in_head = True
    for line in html.splitlines(keepends=True):
        if "</head>" in line:
            in_head = False
        if in_head and _INLINE_SCRIPT.match(line):
            key = line.strip()
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    return "".join(kept)


def _fix_pages(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = dedupe_inline_scripts(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("build-finished", _fix_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
