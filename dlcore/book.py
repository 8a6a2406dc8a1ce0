"""Putting computed numbers into the book's text.

The book never types an experimental number into its prose. A notebook computes the number and calls
``glue("key", value)``; the text refers to it as ``{glue:text}`key:.1f```, and Jupyter Book inserts the value
when it builds the page. This is ``myst_nb.glue`` (it writes the same display output, which the book build
reads), with three differences:

- it turns NumPy and PyTorch scalars into plain Python numbers first, so format specs such as ``:.1f`` work
  (NumPy 2 writes ``np.float64(0.5)`` as the text of a NumPy scalar, which no format spec can parse);
- it works where ``myst_nb`` is not installed (Colab, a plain Jupyter): the value is kept in
  :data:`GLUED` and the notebook runs on;
- it does not import ``myst_nb`` (which imports Sphinx: about 1.5 s of CPU in every notebook); it only asks
  whether the package is installed, and writes the display output itself.
"""

from __future__ import annotations

import importlib.util
from numbers import Number
from typing import Any

import numpy as np
import torch

GLUED: dict[str, Any] = {}
GLUE_PREFIX = "application/papermill.record/"  # myst_nb.ext.glue.GLUE_PREFIX: the build looks for it


def to_python(value: Any) -> Any:
    """A NumPy scalar or a one-element array or tensor as a plain ``int``/``float``/``bool``; else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = False, setting: bool = False, timing: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's text (``{glue:text}`name```).

    Returns nothing (like ``myst_nb.glue``), so a ``glue`` call that ends a cell prints nothing; the stored
    value is in ``GLUED[name]``. ``setting=True`` declares a value the notebook *chose* (a step count, a data
    size) rather than a result it measured: the book's hygiene test demands a hidden ``assert`` on every
    glued result, and exempts settings. ``timing=True`` declares a wall-clock measurement: the text reports
    it, and nothing may assert it, because it depends on the machine and its load. Neither flag changes
    anything at run time.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue names must be identifiers like 'c03_test_acc', got {name!r}")
    value = to_python(value)
    if not isinstance(value, (Number, str)):
        raise TypeError(f"glue({name!r}, ...) expects a number or a string, got {type(value).__name__}; "
                        "glue figures by displaying them instead")
    GLUED[name] = value
    if importlib.util.find_spec("myst_nb") is None:  # Colab or a plain Jupyter without the book tools
        if display:
            print(value)
        return
    _display_glue(name, value, display)


def _display_glue(name: str, value: Any, display: bool) -> None:
    """Write the display output ``myst_nb.glue`` writes (a mime bundle under ``GLUE_PREFIX``)."""
    from IPython import get_ipython
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    if get_ipython() is None:  # a plain Python script: there is no notebook output to write into
        if display:
            print(value)
        return
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
