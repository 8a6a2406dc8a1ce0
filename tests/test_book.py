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
    import builtins

    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError("no myst_nb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    book.glue("c_test_colab", np.float32(2.0), display=True)
    assert book.GLUED["c_test_colab"] == 2.0
    assert "2.0" in capsys.readouterr().out


def test_glue_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="identifiers"):
        book.glue("not a name", 1)
    with pytest.raises(TypeError, match="number or a string"):
        book.glue("c_test_array", np.arange(3))
