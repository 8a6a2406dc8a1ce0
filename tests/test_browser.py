"""The built book in a real browser: every page of ``_build/html``, served on localhost, opened in headless
Chromium (run after ``tools/build_book.py``; ``make html-check``).

A page passes when it loads with no console error, no uncaught exception and no failed request (a 404, or
any request to another host: those are blocked), every math element was typeset by MathJax without a TeX
error and no raw ``$$`` is left in the text, and every image decoded (``naturalWidth > 0``).
One browser serves all pages: about 1-3 s a page, 60-70 s for the 35 pages on a busy 2-core machine.
"""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _chromium import block_other_hosts, launch, sync_playwright

pytestmark = [pytest.mark.html, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
# Every page of the book; _static/ holds theme templates named *.html, not pages.
PAGES = sorted(p for p in HTML.rglob("*.html") if p.relative_to(HTML).parts[0] != "_static") if HTML.exists() else []
REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.I)
PAGE_IDS = [str(p.relative_to(HTML)) for p in PAGES]

# Evaluated in the page once it has loaded: MathJax's state, the images, the visible text.
INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;  // every font requested so far has loaded or failed
  await new Promise(r => setTimeout(r, 100));
  const math = [...document.querySelectorAll('.math')];
  return {
    mathjax: !!(window.MathJax && MathJax.startup),
    math: math.length,
    untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
    texErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') ||
                                                                      e.textContent.slice(0, 60)),
    badImages: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 100)),
    text: document.body.innerText,
  };
}"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("build the book first: python tools/build_book.py --strict", pytrace=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser_context():
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        blocked: list[str] = []
        block_other_hosts(context, blocked)
        yield context, blocked
        context.close()
        browser.close()


@pytest.mark.parametrize("page_path", PAGES, ids=PAGE_IDS)
def test_page_renders_in_a_browser(page_path, server, browser_context):
    context, blocked = browser_context
    blocked.clear()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    html = page_path.read_text(encoding="utf-8")
    if redirect := REDIRECT.search(html):  # the root index.html only forwards to the first page
        page.close()
        assert (page_path.parent / redirect.group(1).split("#")[0]).exists(), f"redirect to a missing page: {redirect}"
        return
    try:
        page.goto(f"{server}/{page_path.relative_to(HTML).as_posix()}", wait_until="load")
        if "application/vnd.jupyter.widget-state+json" in html:
            # Widgets render after `load`, then typeset their labels and fetch the widget fonts.
            page.wait_for_selector(".jupyter-widgets", state="attached", timeout=15_000)
        info = page.evaluate(INSPECT)
    finally:
        page.close()
    assert not blocked, f"{page_path.name} requests other hosts: {blocked[:5]}"
    assert not problems, f"{page_path.name}:\n" + "\n".join(problems[:10])
    if 'class="math' in html:
        assert info["mathjax"], "the page has math but MathJax did not start"
        assert info["math"] > 0
    assert not info["untypeset"], f"math left untypeset: {info['untypeset'][:3]}"
    assert not info["texErrors"], f"TeX errors: {info['texErrors'][:3]}"
    assert "$$" not in info["text"], "raw $$ in the rendered text"
    assert not info["badImages"], f"images that did not load: {info['badImages'][:3]}"
