"""The built site in a real browser, with the network blocked: what a reader actually sees.

Headless Chromium (Debian's ``chromium``, driven by Playwright with ``executable_path``, so no
browser download is needed) opens every page of the site served on 127.0.0.1; every request to
any other host is aborted and counted. For every page: no console error, no failed request, no
raw TeX left in the visible text, every image loaded, no widget view (it would need a kernel),
no table cell reading "NaN". Separate tests: no code block (a cell or a source it shows) and no
printed output that scrolls sideways at 1280 px, no display equation wider than the text, wide
tables in a scroll container; each JavaScript animation steps when its controls are clicked;
the search page finds "LeNet"; prev/next links resolve; the favicon loads and every chapter
offers its notebook for download; the offline copy: every page opened from disk (``file://``)
renders, math typeset, without a console error. A screenshot of every page is saved under
``_build/screenshots/`` (kept by CI as an artefact).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(built_site) -> Iterator[str]:
    """The built site served on 127.0.0.1 (a random free port): its base URL."""
    proc, html = built_site
    assert proc.returncode == 0, "the site did not build: see test_book.py::test_site_builds_with_warnings_as_errors"
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("no chromium on this machine: `make setup` installs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _pages(built_site) -> list[str]:
    """Every content page of the site (not the index/search pages, not redirect stubs)."""
    _, html = built_site
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not p.name.startswith(("genindex", "search"))
        and "_static" not in p.parts
        and 'http-equiv="Refresh"' not in p.read_text()[:2000]
    )


class PageVisit:
    """One page opened in a fresh context: the network outside the site blocked and recorded."""

    def __init__(self, browser, base: str, path: str) -> None:
        self.base, self.path = base, path
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(120_000)  # a loaded CI machine renders slowly
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response", self._response)

    def _response(self, response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url} (HTTP {response.status})")

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self) -> None:
        self.page.goto(self.base + self.path, wait_until="load")
        # MathJax typesets after load; wait for it when the page has math
        self.page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        try:  # a playing animation keeps swapping frames; failures are recorded by the events anyway
            self.page.wait_for_load_state("networkidle", timeout=20_000)
        except Exception as err:  # playwright's TimeoutError
            if "Timeout" not in type(err).__name__:
                raise

    def close(self) -> None:
        self.context.close()


def _page_problems(visit: PageVisit) -> dict[str, list[str]]:
    """What every page must be free of, online or from disk."""
    return {
        "console errors": visit.errors,
        "failed requests": visit.failed,
        "requests outside the site": visit.blocked,
        "raw TeX": visit.page.evaluate(_RAW_TEX),
        "images not loaded": visit.page.evaluate(_BROKEN_IMAGES),
    }


def _visit_each(built_site, browser, base: str) -> Iterator[tuple[str, PageVisit]]:
    """Every content page, opened in turn (the visit closed whatever the loop body does)."""
    for path in _pages(built_site):
        visit = PageVisit(browser, base, path)
        try:
            visit.open()
            yield path, visit
        finally:
            visit.close()


_RAW_TEX = """() => {
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, script, style, mjx-container, .highlight, .output')) continue;
    const t = n.textContent;
    if (/\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\\\(frac|sum|tanh|mathrm|left|right|begin)\\b|\\$\\$/.test(t))
      raw.push(t.trim().slice(0, 80));
  }
  return raw;
}"""

_BROKEN_IMAGES = """() => Array.from(document.images)
  .filter(img => img.getAttribute('src') && !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute('src').slice(0, 80))"""

# Code: the cells' sources and the library sources they show (a highlighted block straight in the
# cell's output); printed output: stream and plain-text results (div.output inside the output).
_WIDE = """(printed) => Array.from(document.querySelectorAll('main div.highlight pre'))
  .filter(pre => Boolean(pre.closest('div.cell_output div.output')) === printed)
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b).slice(0, 90))"""

# A table wider than the text column is fine inside a container that scrolls (overflow-x auto or
# scroll), never when it widens the page itself.
_UNSCROLLED_TABLES = """() => {
  const bad = [];
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    bad.push('the page itself scrolls sideways');
  for (const table of document.querySelectorAll('main table')) {
    let box = table.parentElement, scrolls = false;
    while (box && box.tagName !== 'MAIN') {
      const o = getComputedStyle(box).overflowX;
      if ((o === 'auto' || o === 'scroll') && box.clientWidth < table.scrollWidth + 1) { scrolls = true; break; }
      if (box.scrollWidth <= box.clientWidth + 1 && table.scrollWidth <= box.clientWidth + 1) { scrolls = true; break; }
      box = box.parentElement;
    }
    if (!scrolls) bad.push(table.textContent.trim().slice(0, 60));
  }
  return bad;
}"""

# A display equation wider than the text column would be cut or scroll: none may be.
_WIDE_EQUATIONS = """() => {
  const right = document.querySelector('main').getBoundingClientRect().right;
  return Array.from(document.querySelectorAll('main mjx-container[display="true"]'))
    .filter(m => m.scrollWidth > m.clientWidth + 1 || m.getBoundingClientRect().right > right + 1)
    .map(m => m.textContent.slice(0, 60));
}"""

# Pages with tables that still show "NaN" cells (none now: a cell without a value is shown
# blank or as a dash); the test fails for any other page with one, and for a listed page that
# has none any more.
NAN_CELLS_PENDING: set[str] = set()

_NAN_CELLS = """() => Array.from(document.querySelectorAll('main td, main th'))
  .filter(c => c.textContent.trim() === 'NaN').map(c => c.closest('tr').textContent.trim().slice(0, 60))"""

# Pages whose printed output is still wider than the code column (none now: chapters print long
# lines through lenet_utils.page). The test fails for any other page with such output, and for a
# page listed here that no longer has any (then take it off the list).
PRINTED_OUTPUT_TOO_WIDE: set[str] = set()


# The checks on the served site share one visit of each page: every inspector below runs on every
# page, in the order they are defined (the animation check clicks, so it comes last), and each test
# reads its inspector's findings. An inspector that raises fails only the test that reads it.
_INSPECTORS: dict[str, Callable[[str, PageVisit], Any]] = {}


def _inspector(fn: Callable[[str, PageVisit], Any]) -> Callable[[str, PageVisit], Any]:
    _INSPECTORS[fn.__name__] = fn
    return fn


@pytest.fixture(scope="module")
def online(built_site, site: str, browser) -> dict[str, dict[str, Any]]:
    """Every content page opened once: ``{inspector: {page: its findings, or the error raised}}``."""
    found: dict[str, dict[str, Any]] = {name: {} for name in _INSPECTORS}
    for path, visit in _visit_each(built_site, browser, site):
        for name, inspect in _INSPECTORS.items():
            try:
                found[name][path] = inspect(path, visit)
            except Exception as err:  # reported by the test that reads this inspector
                found[name][path] = err
    return found


def _findings(online: dict[str, dict[str, Any]], inspector: Callable[..., Any]) -> dict[str, Any]:
    """One inspector's findings per page; the first error it raised fails the calling test."""
    results = online[inspector.__name__]
    for path, value in results.items():
        if isinstance(value, Exception):
            raise AssertionError(f"{path}: {inspector.__name__} raised {value!r}") from value
    assert results, "no page was visited"
    return results


@_inspector
def _render(path: str, visit: PageVisit) -> dict[str, list[str]]:
    page = visit.page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found = {
        **_page_problems(visit),
        "widget views (need a kernel)": page.evaluate(
            "() => Array.from(document.querySelectorAll("
            "'script[type=\"application/vnd.jupyter.widget-view+json\"]')).map(s => s.textContent.slice(0, 60))"
        ),
        "table cells reading NaN": page.evaluate(_NAN_CELLS),
    }
    page.screenshot(path=str(SCREENSHOTS / (path.replace("/", "__") + ".png")), full_page=True)
    return found


def test_every_page_renders_offline(online) -> None:
    problems: list[str] = []
    nan_pages: set[str] = set()
    for path, found in _findings(online, _render).items():
        found = dict(found)
        nan_pages |= {path} if found["table cells reading NaN"] else set()
        if path in NAN_CELLS_PENDING:
            del found["table cells reading NaN"]
        problems += [f"{path}: {kind}: {items[:5]}" for kind, items in found.items() if items]
    assert not problems, "\n".join(problems)
    assert nan_pages >= NAN_CELLS_PENDING, (
        f"no NaN cell on {NAN_CELLS_PENDING - nan_pages} any more: take it off NAN_CELLS_PENDING"
    )


@_inspector
def _wide_code(path: str, visit: PageVisit) -> list[str]:
    return visit.page.evaluate(_WIDE, False)


def test_no_code_block_scrolls_sideways(online) -> None:
    """At 1280 px the code column holds about 83 characters of 13 px code (_static/code-width.css):
    no code cell and no source a cell shows (both kept to 80 columns) may need a scroll bar."""
    wide = [f"{path}: {line}" for path, lines in _findings(online, _wide_code).items() for line in lines]
    assert not wide, f"{len(wide)} code blocks scroll sideways:\n" + "\n".join(wide[:20])


@_inspector
def _wide_output(path: str, visit: PageVisit) -> dict[str, list[str]]:
    page = visit.page
    return {
        "printed": page.evaluate(_WIDE, True),
        "tables": page.evaluate(_UNSCROLLED_TABLES),
        "equations": page.evaluate(_WIDE_EQUATIONS),
    }


def test_printed_output_and_equations_fit_wide_tables_scroll(online) -> None:
    """Printed lines fit the code column, display equations the text column; a wide table
    scrolls in its own container."""
    wide: list[str] = []
    still_wide: set[str] = set()
    for path, found in _findings(online, _wide_output).items():
        wide += [f"{path}: table not in a scroll container: {t}" for t in found["tables"]]
        wide += [f"{path}: display equation wider than the text: {e}" for e in found["equations"]]
        if path in PRINTED_OUTPUT_TOO_WIDE:
            still_wide |= {path} if found["printed"] else set()
        else:
            wide += [f"{path}: printed line too wide: {line}" for line in found["printed"]]
    assert not wide, f"{len(wide)} outputs scroll sideways or widen the page:\n" + "\n".join(wide[:20])
    assert still_wide == PRINTED_OUTPUT_TOO_WIDE, (
        f"no printed output too wide on {PRINTED_OUTPUT_TOO_WIDE - still_wide} any more: "
        "take it off PRINTED_OUTPUT_TOO_WIDE"
    )


# Every figure a chapter draws: its image, how much the browser scales it, and (for a
# JavaScript animation) the smallest text of its frames, which lenet_utils.widgets.animate writes
# on the wrapping div; a still figure carries its smallest text in its PNG (lenet_utils.style).
_FIGURES = """() => Array.from(document.querySelectorAll('main img')).map(img => {
  const anim = img.closest('div.lenet-animation');
  return {src: img.getAttribute('src'), scale: img.clientWidth / img.naturalWidth,
          animation: anim ? anim.dataset.smallestText : null};
})"""


def _smallest_text(png: Path) -> str | None:
    from PIL import Image

    from lenet_utils.style import METADATA_KEY

    with Image.open(png) as image:
        return image.info.get(METADATA_KEY)


@_inspector
def _figures(path: str, visit: PageVisit) -> list[dict[str, Any]]:
    return visit.page.evaluate(_FIGURES)


def test_figure_text_is_readable_as_displayed(built_site, online) -> None:
    """No figure text smaller than lenet_utils.style.MIN_TEXT_PX as the browser shows it (at
    1280 px a figure wider than the text column is scaled down, and its labels with it). A
    figure's smallest text is recorded when it is drawn (lenet_utils.style); a chapter's PNG
    without that record was not drawn the book's way and fails too."""
    from lenet_utils.style import MIN_TEXT_PX

    _, html = built_site
    small: list[str] = []
    figures = 0
    for path, found in _findings(online, _figures).items():
        for fig in found:
            if fig["animation"] is not None:
                note = fig["animation"]
            elif "_images/" not in fig["src"]:
                continue  # logos and icons are not figures
            elif fig["src"].endswith(".svg"):
                # d2l's own plot (chapter 4), drawn by d2l in SVG at matplotlib's default 10 pt
                # (13.3 px): readable as long as the page does not shrink it
                if fig["scale"] < 1:
                    small.append(f"{path}: {fig['src']} (SVG) shown at scale {fig['scale']:.2f}")
                continue
            else:
                note = _smallest_text((html / path).parent / fig["src"])
                if note is None:
                    small.append(f"{path}: {fig['src']} has no smallest-text record")
                    continue
            figures += 1
            pixels, _, text = note.partition(" ")
            shown = float(pixels) * fig["scale"]
            if shown < MIN_TEXT_PX - 0.05:
                small.append(f"{path}: {shown:.1f} px ({float(pixels):.1f} px at scale {fig['scale']:.2f}): {text!r}")
    assert figures >= 50, f"only {figures} figures found"
    assert not small, f"{len(small)} figures with text under {MIN_TEXT_PX} px:\n" + "\n".join(small)


@_inspector
def _downloads(path: str, visit: PageVisit) -> dict[str, Any]:
    page = visit.page
    problems: list[str] = []
    icons = page.eval_on_selector_all("link[rel~='icon']", "ls => ls.map(l => l.href)")
    if not icons:
        problems.append(f"{path}: no favicon link")
    for href in icons:
        response = page.request.get(href)
        if not (response.ok and response.body()[:8] == b"\x89PNG\r\n\x1a\n"):
            problems.append(f"{path}: favicon {href} does not load as a PNG")
    chapter = path.startswith("chapters/") and path != "chapters/sources.html"
    if chapter:
        links = page.eval_on_selector_all("a.btn-download-source-button", "as => as.map(a => a.href)")
        notebook = path.removesuffix(".html") + ".ipynb"
        wanted = [h for h in links if h.endswith("/_sources/" + notebook)]
        if not wanted:
            problems.append(f"{path}: no download link to its notebook ({links})")
        for href in wanted:
            response = page.request.get(href)
            if not (response.ok and b'"nbformat"' in response.body()):
                problems.append(f"{path}: {href} does not resolve to the notebook")
    return {"chapter": chapter, "problems": problems}


def test_favicon_and_notebook_downloads(online) -> None:
    """Every page names the favicon (a PNG that loads); every chapter page offers its notebook
    for download (jupyter-book's download button), and the link resolves to the notebook."""
    found = _findings(online, _downloads).values()
    chapters = sum(f["chapter"] for f in found)
    problems = [p for f in found for p in f["problems"]]
    assert chapters >= 7, f"only {chapters} chapter pages found"
    assert not problems, "\n".join(problems)


# The offline copy of the book (README, "Reading the book offline"): pages opened from disk.
MATH_PAGES = ["chapters/03_lenet5_layer_by_layer.html", "chapters/05_lenet5_as_published.html"]
# The one thing that does not work from disk in Chromium: the search page's excerpts are fetched
# from the pages, and Chromium refuses fetch() on file:// URLs (the results are listed anyway).
_FILE_FETCH_REFUSED = ("from origin 'null' has been blocked by CORS policy", "net::ERR_FAILED", "Failed to fetch")


def test_pages_work_opened_from_disk(built_site, browser) -> None:
    """Every page as a ``file://`` page, every request off the disk blocked: no console error, no
    failed request, images loaded, no raw TeX; math typeset (MathJax from the site) on the pages
    with math; the search page lists its results."""
    _, html = built_site
    base = html.resolve().as_uri() + "/"
    problems: list[str] = []
    for path, visit in _visit_each(built_site, browser, base):
        page = visit.page
        typeset = page.evaluate("() => document.querySelectorAll('main mjx-container').length")
        found = {
            **_page_problems(visit),
            "no typeset math": ["no mjx-container"] if path in MATH_PAGES and not typeset else [],
        }
        problems += [f"{path}: {kind}: {items[:5]}" for kind, items in found.items() if items]
    visit = PageVisit(browser, base, "search.html?q=LeNet")
    try:
        visit.open()
        visit.page.wait_for_selector("#search-results li", timeout=30_000)
        if not visit.page.query_selector_all("#search-results li"):
            problems.append("search.html from disk: no result for 'LeNet'")
        problems += [
            f"search.html from disk: {e}" for e in visit.errors if not any(r in e for r in _FILE_FETCH_REFUSED)
        ]
    finally:
        visit.close()
    assert not problems, "\n".join(problems)


@_inspector
def _prev_next(path: str, visit: PageVisit) -> list[str]:
    broken = []
    for link in visit.page.query_selector_all("a.prev-page, a.next-page"):
        href = link.get_attribute("href")
        response = visit.page.request.get(visit.page.url.rsplit("/", 1)[0] + "/" + href.split("#")[0])
        if not response.ok:
            broken.append(f"{path}: prev/next link {href} gives HTTP {response.status}")
    return broken


@_inspector
def _animations(path: str, visit: PageVisit) -> dict[str, Any]:
    """Clicks each animation's 'Next frame' (last of the inspectors: it changes the page)."""
    stepped, stuck = 0, []
    for anim in visit.page.query_selector_all("div.animation"):
        img = anim.query_selector("img")
        pause = anim.query_selector("button[title='Pause']")
        if pause:
            pause.click()
        before = img.get_attribute("src")
        anim.query_selector("button[title='Next frame']").click()
        after = img.get_attribute("src")
        if after and after != before:
            stepped += 1
        else:
            stuck.append(f"{path}: an animation did not step when 'Next frame' was clicked")
    return {"stepped": stepped, "stuck": stuck}


def test_animations_step_when_clicked(online) -> None:
    found = _findings(online, _animations).values()
    stuck = [s for f in found for s in f["stuck"]]
    assert not stuck, "\n".join(stuck)
    stepped = sum(f["stepped"] for f in found)
    assert stepped >= 1, "no JavaScript animation found on the site (the explorers' static faces)"


def test_search_finds_lenet_and_prev_next_links_resolve(site: str, browser, online) -> None:
    visit = PageVisit(browser, site, "search.html?q=LeNet")
    try:
        visit.open()
        visit.page.wait_for_selector("#search-results li", timeout=30_000)
        assert visit.page.query_selector_all("#search-results li"), "search for 'LeNet' found nothing"
    finally:
        visit.close()
    broken = [b for found in _findings(online, _prev_next).values() for b in found]
    assert not broken, "\n".join(broken)
