import numpy as np
import pytest
import torch

from dlcore import book


@pytest.mark.parametrize("value, expected", [(np.float64(0.5), 0.5), (np.int64(3), 3), (np.array(2.5), 2.5),
                                             (torch.tensor(1.5), 1.5), (torch.tensor([4]), 4), (7, 7),
                                             (np.bool_(True), True), ("text", "text")])
def test_glue_stores_plain_python_values(value, expected):
    assert book.glue("c_test_value", value) is None  # nothing to echo when a cell ends with glue()
    stored = book.GLUED["c_test_value"]
    assert stored == expected and type(stored) is type(expected)


def test_glued_numpy_scalars_format_like_floats():
    book.glue("c_test_fmt", np.float64(0.123456))
    stored = book.GLUED["c_test_fmt"]
    assert f"{stored:.1f}" == "0.1" and repr(stored) == "0.123456"


def test_glue_works_without_myst_nb(monkeypatch, capsys):
    real_find_spec = book.importlib.util.find_spec
    monkeypatch.setattr(book.importlib.util, "find_spec",
                        lambda name, *a: None if name == "myst_nb" else real_find_spec(name, *a))
    book.glue("c_test_colab", np.float32(2.0), display=True)
    assert book.GLUED["c_test_colab"] == 2.0
    assert "2.0" in capsys.readouterr().out


def test_glue_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="identifiers"):
        book.glue("not a name", 1)
    with pytest.raises(TypeError, match="number or a string"):
        book.glue("c_test_array", np.arange(3))


@pytest.mark.parametrize("display", [False, True])
def test_glue_writes_exactly_what_myst_nb_glue_writes(monkeypatch, display):
    """The build reads our output as myst_nb's own: same mime bundle, same metadata."""
    import IPython
    import IPython.display
    import myst_nb.ext.glue as myst_glue

    calls = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: calls.append((a, k)))
    book.glue("c_test_same", 0.25, display=display)
    myst_glue.glue("c_test_same", 0.25, display=display)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert myst_glue.GLUE_PREFIX == book.GLUE_PREFIX


def test_glue_does_not_import_sphinx():
    import subprocess
    import sys

    code = "import sys, dlcore.book as b; b.glue('c_x', 1.0); print('sphinx' in sys.modules, 'myst_nb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
