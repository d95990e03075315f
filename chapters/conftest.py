"""nbval settings for the chapters (used by `pytest --nbval chapters/`).

* stderr is not compared: warnings and progress bars (tqdm writes to stderr) vary by machine.
* Widget views carry random model ids and are skipped by nbval already; images are not
  compared (their honest ranges are asserted by hidden cells instead).
"""

import os


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


# Progress bars and d2l's plots need no display; keep matplotlib off any GUI backend.
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
