"""Checks on the built HTML book (run after `tools/build_book.py`; `make html-check`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.html

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
PAGES = sorted(HTML.rglob("*.html")) if HTML.exists() else []
CHAPTER_PAGES = [p for p in PAGES if "chapters" in p.relative_to(HTML).parts]


def test_the_book_was_built():
    assert (HTML / "index.html").exists(), "build the book first: python tools/build_book.py --strict"
    assert CHAPTER_PAGES, "no chapter pages were built"


def test_every_notebook_has_a_page():
    for nb in (ROOT / "chapters").rglob("*.ipynb"):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        page = HTML / nb.relative_to(ROOT).with_suffix(".html")
        assert page.exists(), f"{nb} has no page in the built book"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(HTML)) for p in PAGES])
def test_pages_load_no_script_or_style_from_the_internet(page):
    html = page.read_text(encoding="utf-8")
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
    remote = [u for u in remote if not u.startswith("https://github.com")]  # plain links, not assets
    assert not remote, f"{page.name} loads assets from the internet: {remote}"


def test_math_and_widgets_are_served_by_the_book():
    mathjax = list((HTML / "_static").rglob("tex-chtml*.js"))
    assert mathjax, "MathJax is not in _static (sphinx-mathjax-offline missing?)"
    with_widgets = [p for p in CHAPTER_PAGES if "application/vnd.jupyter.widget-state+json" in p.read_text()]
    for page in with_widgets:
        html = page.read_text()
        assert "_static/require.js" in html and "_static/embed-amd.js" in html
    assert (HTML / "_static" / "embed-amd.js").exists() and (HTML / "_static" / "require.js").exists()


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[str(p.relative_to(HTML)) for p in CHAPTER_PAGES])
def test_chapter_pages_have_no_errors_and_resolved_numbers(page):
    html = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html and 'class="ansi-red-fg"' not in html
    prose = re.sub(r"<code.*?</code>|<pre.*?</pre>", "", html, flags=re.S)  # literal examples are fine
    assert "{glue" not in prose, "an unresolved glue role was left in the page"
    assert "cell_output" in html or page.stem == "index"


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[str(p.relative_to(HTML)) for p in CHAPTER_PAGES])
def test_no_unrendered_math_in_the_prose(page):
    """A `$` left in the text (outside code and math) means inline math the parser did not recognise."""
    body = re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", page.read_text(encoding="utf-8"), flags=re.S)
    body = re.sub(r'<span class="math[^"]*">.*?</span>|<div class="math[^"]*"[^>]*>.*?</div>', "", body,
                  flags=re.S)
    text = re.sub(r"<[^>]+>", "", body)
    stray = [text[max(0, m.start() - 40):m.start() + 40] for m in re.finditer(r"\$", text)]
    assert not stray, f"unrendered math near: {stray[:3]}"
