"""The built site in a real browser, with the network blocked: what a reader actually sees.

Headless Chromium (Debian's ``chromium``, driven by Playwright with ``executable_path``, so no
browser download is needed) opens every page of the site served on 127.0.0.1; every request to
any other host is aborted and counted. For every page: no console error, no failed request, no
raw TeX left in the visible text, every image loaded, no widget view (it would need a kernel);
no code block that scrolls sideways at 1280 px (a separate test); each JavaScript animation
steps when its controls are clicked; the search page finds "LeNet"; prev/next links resolve. A screenshot of
every page is saved under ``_build/screenshots/`` (kept by CI as an artefact).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

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

_WIDE_CODE = """() => Array.from(document.querySelectorAll('main div.highlight pre'))
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b).slice(0, 90))"""


def test_every_page_renders_offline(built_site, site: str, browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for path in _pages(built_site):
        visit = PageVisit(browser, site, path)
        try:
            visit.open()
            page = visit.page
            found = {
                "console errors": visit.errors,
                "failed requests": visit.failed,
                "requests outside the site": visit.blocked,
                "raw TeX": page.evaluate(_RAW_TEX),
                "images not loaded": page.evaluate(_BROKEN_IMAGES),
                "widget views (need a kernel)": page.evaluate(
                    "() => Array.from(document.querySelectorAll("
                    "'script[type=\"application/vnd.jupyter.widget-view+json\"]')).map(s => s.textContent.slice(0, 60))"
                ),
            }
            page.screenshot(path=str(SCREENSHOTS / (path.replace("/", "__") + ".png")), full_page=True)
        finally:
            visit.close()
        problems += [f"{path}: {kind}: {items[:5]}" for kind, items in found.items() if items]
    assert not problems, "\n".join(problems)


@pytest.mark.xfail(strict=True, reason="chapter code and shown sources are not yet wrapped to 80 columns")
def test_no_code_block_scrolls_sideways(built_site, site: str, browser) -> None:
    """At 1280 px the code column holds about 78 characters: no code cell may need a scroll bar."""
    wide: list[str] = []
    for path in _pages(built_site):
        visit = PageVisit(browser, site, path)
        try:
            visit.open()
            wide += [f"{path}: {line}" for line in visit.page.evaluate(_WIDE_CODE)]
        finally:
            visit.close()
    assert not wide, f"{len(wide)} code blocks scroll sideways:\n" + "\n".join(wide[:20])


def test_animations_step_when_clicked(built_site, site: str, browser) -> None:
    stepped = 0
    for path in _pages(built_site):
        visit = PageVisit(browser, site, path)
        try:
            visit.open()
            page = visit.page
            for anim in page.query_selector_all("div.animation"):
                img = anim.query_selector("img")
                pause = anim.query_selector("button[title='Pause']")
                if pause:
                    pause.click()
                before = img.get_attribute("src")
                anim.query_selector("button[title='Next frame']").click()
                after = img.get_attribute("src")
                assert after and after != before, f"{path}: an animation did not step when 'Next frame' was clicked"
                stepped += 1
        finally:
            visit.close()
    assert stepped >= 1, "no JavaScript animation found on the site (the explorers' static faces)"


def test_search_finds_lenet_and_prev_next_links_resolve(built_site, site: str, browser) -> None:
    visit = PageVisit(browser, site, "search.html?q=LeNet")
    try:
        visit.open()
        visit.page.wait_for_selector("#search-results li", timeout=30_000)
        assert visit.page.query_selector_all("#search-results li"), "search for 'LeNet' found nothing"
    finally:
        visit.close()
    for path in _pages(built_site):
        visit = PageVisit(browser, site, path)
        try:
            visit.open()
            for link in visit.page.query_selector_all("a.prev-page, a.next-page"):
                href = link.get_attribute("href")
                response = visit.page.request.get(visit.page.url.rsplit("/", 1)[0] + "/" + href.split("#")[0])
                assert response.ok, f"{path}: prev/next link {href} gives HTTP {response.status}"
        finally:
            visit.close()
