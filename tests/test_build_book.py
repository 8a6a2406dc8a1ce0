"""tools/build_book.py: progress bars are removed from executed notebooks, widget fonts are served."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_book)


def _model(name: str, **state) -> dict:
    return {"model_module": "@jupyter-widgets/controls", "model_name": name, "state": state}


def _view(model_id: str) -> dict:
    return nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "widget"})


def _notebook() -> nbformat.NotebookNode:
    state = {
        # a demo: a VBox holding a slider (with its layout) and an Output showing a figure
        "demo": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"]),
        "slider": _model("FloatSliderModel", value=1.0, layout="IPY_MODEL_slider_layout"),
        "slider_layout": _model("LayoutModel"),
        "out": _model("OutputModel", outputs=[{"output_type": "display_data",
                                               "data": {"application/vnd.jupyter.widget-view+json":
                                                        {"model_id": "inner"}}}]),
        "inner": _model("LabelModel", value="nested"),
        # a finished tqdm bar: an HBox of HTML, FloatProgress, HTML
        "bar": _model("HBoxModel", children=["IPY_MODEL_bar_text", "IPY_MODEL_bar_progress"]),
        "bar_text": _model("HTMLModel", value="training: 100%"),
        "bar_progress": _model("FloatProgressModel", value=15.0, max=15.0),
        "unused": _model("LayoutModel"),
    }
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("bar", outputs=[_view("bar"),
                                                  nbformat.v4.new_output("stream", name="stdout", text="done\n")]),
        nbformat.v4.new_code_cell("closed bar (tqdm leave=False)", outputs=[_view("closed")]),
        nbformat.v4.new_code_cell("demo", outputs=[_view("demo")]),
        nbformat.v4.new_markdown_cell("text"),
    ]
    nb.metadata["widgets"] = {build_book.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def test_progress_bars_and_closed_widgets_are_removed_and_demos_kept():
    nb = _notebook()
    assert build_book.strip_progress_bars(nb) == 2
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["stream"]
    assert nb.cells[1].outputs == []
    assert len(nb.cells[2].outputs) == 1
    kept = nb.metadata["widgets"][build_book.WIDGET_STATE]["state"]
    assert set(kept) == {"demo", "slider", "slider_layout", "out", "inner"}


def test_state_is_dropped_when_only_progress_bars_were_shown():
    nb = _notebook()
    nb.cells = nb.cells[:2]
    assert build_book.strip_progress_bars(nb) == 2
    assert "widgets" not in nb.metadata


def test_notebook_without_widgets_is_unchanged():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1")])]
    before = nbformat.writes(nb)
    assert build_book.strip_progress_bars(nb) == 0
    assert nbformat.writes(nb) == before


def test_widget_fonts_are_copied_next_to_widget_pages(tmp_path):
    (tmp_path / "chapters" / "a").mkdir(parents=True)
    (tmp_path / "chapters" / "a" / "w.html").write_text('<script type="application/vnd.jupyter.widget-state+json">')
    (tmp_path / "chapters" / "a" / "plain.html").write_text("<p>no widgets</p>")
    (tmp_path / "index.html").write_text("<p>no widgets</p>")
    folders = build_book.serve_widget_fonts(tmp_path)
    assert folders == [tmp_path / "chapters" / "a" / build_book.FONT_DIR]
    fonts = sorted(p.name for p in build_book.WIDGET_FONTS.glob("*.woff2"))
    assert fonts and sorted(p.name for p in folders[0].iterdir()) == fonts
