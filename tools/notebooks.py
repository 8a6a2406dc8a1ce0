"""Keep the chapter notebooks clean and consistent.

    python tools/notebooks.py clean [NOTEBOOK ...]     strip outputs/counts, normalise metadata, fix the Colab cell
    python tools/notebooks.py from-py SRC.py DST.ipynb   convert a jupytext "percent" script, then clean it
    python tools/notebooks.py check                     report notebooks that are not clean (exit 1)

The repository URL lives in one place, ``_config.yml``, and dlcore's version in one place,
``dlcore/__init__.py``. The Colab setup cell of every notebook is generated from both here: it installs
dlcore from the release tag ``v<version>``, so a notebook keeps the library it was written for, and
``clean`` updates every notebook after the URL or the version changes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
COLAB_TAGS = ["remove-cell"]
# Cell metadata that survives cleaning: tags, Jupyter's own, and an exercise's points and difficulty
# (read by tools/assignments.py).
KEPT_METADATA = ("tags", "jupyter", "points", "difficulty")
SOLUTION_MARKER = "### BEGIN SOLUTION"
SOLUTION_TAGS = ["hide-input"]


def repo_url() -> tuple[str, str]:
    """(url, branch) of the repository, read from _config.yml."""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def dlcore_version() -> str:
    """``dlcore.__version__``, read from the source without importing the package."""
    text = (ROOT / "dlcore" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


def colab_ref() -> str:
    """The git ref the Colab cell installs: the release tag of the current dlcore version."""
    return f"v{dlcore_version()}"


def colab_cell_source() -> str:
    """The first code cell of every notebook: install dlcore when (and only when) running on Colab."""
    url, _ = repo_url()
    ref = colab_ref()
    return (
        f"# Colab setup: on Google Colab, install dlcore {ref}, the release this notebook was written for.\n"
        "# Colab's own torch is kept (dlcore only needs torch>=2.2). Elsewhere this cell does nothing.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    requirement = "dlcore @ git+{url}@{ref}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)'
    )


def _is_colab_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and "google.colab" in "".join(cell.get("source", ""))


def clean(nb: dict) -> dict:
    """Return a clean copy: no outputs or counts, fixed kernelspec, Colab cell first, stable cell ids."""
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        meta = {k: v for k, v in cell.get("metadata", {}).items() if k in KEPT_METADATA}
        if cell["cell_type"] == "code" and any(line.strip() == SOLUTION_MARKER for line in src.splitlines()):
            # a worked solution: the HTML book shows it collapsed behind a toggle (see book/instructor.md)
            meta["tags"] = list(meta.get("tags", [])) + [t for t in SOLUTION_TAGS if t not in meta.get("tags", [])]
        new = {"cell_type": cell["cell_type"], "id": f"c{i:03d}", "metadata": meta, "source": src}
        if cell["cell_type"] == "code":
            new.update(execution_count=None, outputs=[])
        cells.append(new)
    cells = [c for c in cells if not _is_colab_cell(c)]
    colab = {"cell_type": "code", "execution_count": None, "id": "colab", "metadata": {"tags": COLAB_TAGS},
             "outputs": [], "source": colab_cell_source()}
    cells.insert(0, colab)
    for i, c in enumerate(cells[1:], start=1):
        c["id"] = f"c{i:03d}"
    return {
        "cells": cells,
        "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def clean_file(path: Path) -> bool:
    """Clean a notebook file in place; True if it changed."""
    text = path.read_text(encoding="utf-8")
    new = _dump(clean(json.loads(text)))
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def from_py(src: Path, dst: Path) -> None:
    """Convert a jupytext percent script into a clean notebook (needs ``pip install jupytext``)."""
    import jupytext

    nb = jupytext.read(src)
    dst.write_text(_dump(clean(json.loads(jupytext.writes(nb, fmt="ipynb")))), encoding="utf-8")


def toc_files() -> list[str]:
    """Every ``file``/``root`` entry of _toc.yml (paths without suffix), in reading order."""
    import yaml

    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    files.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
    return files


def toc_notebooks() -> list[Path]:
    """The chapter notebooks listed in _toc.yml, in reading order (stray files in chapters/ are not the book)."""
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def all_notebooks() -> list[Path]:
    return sorted(p for p in CHAPTERS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("clean", "from-py", "check"):
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "from-py":
        from_py(Path(args[0]), Path(args[1]))
        return 0
    paths = [Path(a) for a in args] or all_notebooks()
    if cmd == "clean":
        for p in paths:
            if clean_file(p):
                print(f"cleaned {p}")
        return 0
    dirty = [p for p in paths if _dump(clean(json.loads(p.read_text(encoding="utf-8")))) != p.read_text(
        encoding="utf-8")]
    for p in dirty:
        print(f"not clean: {p} (run: python tools/notebooks.py clean {p})")
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
