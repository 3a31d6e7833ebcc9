"""The course website (`make book`) in headless Chromium: every page, its images, its links, no console error.

Run with `make book-test` (it builds the site first and runs with the network cut). The site is served on a loopback
port; any request for something outside it (a CDN script, a remote image or font) fails the test, network or not.
Screenshots of the landing page and of a notebook page with a plot are kept in build/browser/.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from test_jupyterlab import CHROMIUM, CHROMIUM_FLAGS, ROOT

from hubhelpers import results as R
from hubhelpers.tooling import book, course

SHOT_NOTEBOOK = "01_lm_probability"  # a notebook page with plots, for the screenshot
SEARCH_WORD = "perplexity"


def site_dir() -> Path:
    return R.find_build_dir().resolve() / book.BOOK_DIR


def first_heading(notebook: Path) -> str:
    """The text of the notebook's first '# ' heading, markdown emphasis and code marks removed."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return re.sub(r"[*`]", "", line[2:]).strip()
    raise AssertionError(f"{notebook.name} has no '# ' heading")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury the test's own report
        pass


@pytest.fixture(scope="module")
def site():
    """The built site served on 127.0.0.1; yields (base url, site folder)."""
    root = site_dir()
    if not (root / "index.html").is_file():
        pytest.fail(f"no site at {root}: run `make book` (after `make course`) first")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make book-test` (it installs Debian's chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Visit:
    """One page opened in a fresh tab, with what went wrong while it loaded."""

    def __init__(self, browser, base: str, path: str):
        self.base, self.errors, self.outside = base, [], []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} {r.url}"))
        self.page.route("**/*", self._local_only)
        self.page.goto(f"{base}/{path}", wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def _local_only(self, route):
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def broken_images(self) -> list[str]:
        return self.page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                                  ".map(i => i.getAttribute('src'))")

    def links(self) -> list[str]:
        return self.page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")


def broken_links(base: str, root: Path, hrefs: list[str]) -> list[str]:
    """The site-internal links whose file, or whose #anchor in that file, does not exist."""
    broken = []
    for href in hrefs:
        if not href.startswith(base):
            continue  # external: not followed (the network may be cut)
        parts = urlsplit(href)
        target = root / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or (parts.fragment and target.suffix == ".html"
              and f'id="{unquote(parts.fragment)}"' not in target.read_text(encoding="utf-8")):
            broken.append(href)
    return broken


def site_pages(root: Path) -> list[str]:
    """Every HTML page of the site (not the theme's template fragments under _static/)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html") if p.relative_to(root).parts[0] != "_static")


def test_every_page_loads_with_its_images_links_and_no_console_error(site, browser):
    base, root = site
    pages = site_pages(root)
    notebooks = course.discover_notebooks(ROOT / "notebooks")
    expected = {f"{book.PAGES_DIR}/{nb.stem}.html" for nb in notebooks} | {"index.html", f"{book.REPORT_PAGE}.html"}
    assert expected <= set(pages), f"pages missing from the site: {sorted(expected - set(pages))}"
    problems = {}
    for path in pages:
        visit = Visit(browser, base, path)
        provenance = visit.page.locator(".llm-hub-provenance")
        footer = provenance.first.inner_text() if provenance.count() else ""
        found = {"console/HTTP errors": visit.errors, "requests outside the site": visit.outside,
                 "missing images": visit.broken_images(), "broken links": broken_links(base, root, visit.links()),
                 "no provenance footer (date, commit)": [] if "Executed" in footer and "commit" in footer else [footer]}
        problems.update({f"{path}: {kind}": items for kind, items in found.items() if items})
        visit.page.close()
    assert not problems, json.dumps(problems, indent=1)[:4000]


@pytest.mark.parametrize("notebook", course.discover_notebooks(ROOT / "notebooks"), ids=lambda p: p.stem)
def test_notebook_page_has_its_heading_badge_download_plots_and_provenance(site, browser, notebook):
    base, root = site
    visit = Visit(browser, base, f"{book.PAGES_DIR}/{notebook.stem}.html")
    page = visit.page
    heading = page.locator("h1").first.inner_text()
    assert first_heading(notebook) in heading, (heading, first_heading(notebook))
    assert page.locator("a[href*='colab.research.google.com']").count() >= 1, "no Open in Colab link"
    download = page.locator(f"a[href$='{notebook.name}'][download], a.download[href$='{notebook.name}']")
    assert download.count() >= 1, "no download link to the notebook"
    saved = R.find_build_dir().resolve() / "figures" / notebook.stem
    if saved.is_dir() and any(saved.glob("*.png")):  # the notebook plots: its page shows them
        assert page.locator("img[src*='_images/']:not([alt='Open In Colab'])").count() >= 1, "no plot on the page"
    footer = page.locator(".llm-hub-provenance").inner_text()
    assert "commit" in footer and "torch" in footer and "Executed" in footer, footer
    page.close()


def test_search_finds_a_course_word_and_screenshots_are_kept(site, browser):
    base, _ = site
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    landing = Visit(browser, base, "index.html")
    assert "Course map" in landing.page.locator("body").inner_text()
    landing.page.screenshot(path=str(shots / "book-index.png"))
    landing.page.close()
    nb = Visit(browser, base, f"{book.PAGES_DIR}/{SHOT_NOTEBOOK}.html")
    plot = nb.page.locator("img[src*='_images/']:not([alt='Open In Colab'])").first
    plot.scroll_into_view_if_needed()
    nb.page.screenshot(path=str(shots / "book-notebook.png"))
    nb.page.close()
    search = Visit(browser, base, f"search.html?q={SEARCH_WORD}")
    results = search.page.locator("#search-results li")
    results.first.wait_for(timeout=30_000)
    assert results.count() >= 1 and not search.errors, search.errors
    search.page.close()
