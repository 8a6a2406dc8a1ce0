"""Planted bugs: a copy of a dlcore module with one piece of its source replaced, for tests that prove a
comparison can tell right from wrong."""

from __future__ import annotations

import inspect
import types

import pytest


def planted_bug(module: types.ModuleType, old: str, new: str) -> types.ModuleType:
    """A copy of ``module`` with the text ``old`` (which must occur exactly once) replaced by ``new``."""
    src = inspect.getsource(module)
    if "_mutmut_" in src:  # under mutation testing the module holds every mutant's copy of each function
        pytest.skip("planted bugs need the plain source, not mutmut's trampolined copy")
    assert src.count(old) == 1, f"planted bug no longer applies: {old!r} occurs {src.count(old)} times"
    name = module.__name__.rsplit(".", 1)[-1] + "_mutant"
    mod = types.ModuleType(name)
    exec(compile(src.replace(old, new), name, "exec"), mod.__dict__)
    return mod
