"""Checks on the built HTML book (run after `tools/build_book.py`; `make html-check`)."""

from __future__ import annotations

import html as htmllib
import json
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


def _text(page: Path) -> str:
    """The page's text as a reader sees it (tags removed, entities decoded), scripts and styles left out."""
    body = re.sub(r"<(script|style)\b.*?</\1>", "", page.read_text(encoding="utf-8"), flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", "", body))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(HTML)) for p in PAGES])
def test_no_object_reprs_in_the_pages(page):
    """`<torch._C.Generator at 0x7f...>` in a page means a cell's last expression returned an object."""
    text = _text(page)
    reprs = [text[max(0, m.start() - 60):m.end() + 20] for m in re.finditer(r" at 0x[0-9a-fA-F]+", text)]
    assert not reprs, f"object reprs in the page (end the cell with `;` or make the call return None): {reprs[:3]}"


WIDGET_VIEW = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.S)
WIDGET_STATE = re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S)
PROGRESS_MODELS = {"FloatProgressModel", "IntProgressModel"}


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[str(p.relative_to(HTML)) for p in CHAPTER_PAGES])
def test_no_empty_widget_boxes(page):
    """Every widget output must have its saved state (otherwise the page shows an empty box), and no
    progress bar may be saved: tqdm bars are live widgets, dead in a static page (the build sets
    TQDM_DISABLE=1, see tools/build_book.py)."""
    html = page.read_text(encoding="utf-8")
    views = [json.loads(htmllib.unescape(v))["model_id"] for v in WIDGET_VIEW.findall(html)]
    states = [json.loads(htmllib.unescape(s)) for s in WIDGET_STATE.findall(html)]
    models = {k: v for st in states for k, v in st.get("state", {}).items()}
    missing = [v for v in views if v not in models]
    assert not missing, f"{len(missing)} widget output(s) without saved state render as empty boxes"
    progress = [k for k, v in models.items() if v.get("model_name") in PROGRESS_MODELS]
    assert not progress, (f"{len(progress)} progress bar(s) saved in the page: tools/build_book.py removes them from "
                          "the notebooks it executes; this one was executed by jupyter-book itself (edited during "
                          "the build?): build again")
