"""Keep every notebook's GPU branch alive on a CPU-only machine.

No GPU is available where the book is tested, so the ``gpu`` profile would rot unseen. This test runs
each notebook that declares toy sizes (``device.pick(cpu=..., gpu=..., smoke=...)``) under
``DLCORE_PROFILE=gpu DLCORE_SMOKE=1``: the GPU code path at toy size. The hidden claim checks (cells
tagged ``remove-cell``) are skipped: they are about the numbers at the real sizes, which nbval checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _code(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _smokable(path: Path) -> bool:
    code = _code(json.loads(path.read_text()))
    return re.search(r"pick\([^)]*smoke=", code) is not None


NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and _smokable(p))


def test_some_notebooks_have_a_gpu_branch():
    assert NOTEBOOKS, "no notebook declares smoke sizes in a device.pick call"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_gpu_branch_runs_at_toy_size(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("DLCORE_PROFILE", "gpu")
    monkeypatch.setenv("DLCORE_SMOKE", "1")
    monkeypatch.setenv("DLCORE_DEVICE", "cpu")  # no GPU here: the gpu-sized code path runs on the CPU
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    from kernel_lock import kernel_start_lock  # on sys.path through the root conftest.py

    with kernel_start_lock() as release:
        NotebookClient(nb, timeout=240, kernel_name="python3", on_notebook_start=release,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
