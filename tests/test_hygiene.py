"""The book's conventions, enforced: clean notebooks, a complete table of contents, the Colab cell,
glued numbers with hidden checks, exercises with solutions and checks, loose requirements."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbtools)

NOTEBOOKS = nbtools.all_notebooks()
NB_IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def _toc_files() -> list[str]:
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("file", "root"):
                    files.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return files


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under chapters/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_is_committed_clean(path):
    nb = _load(path)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                f"{path.name} has outputs: run `python tools/notebooks.py clean {path}`"
    assert nbtools.clean(nb) == nb, f"{path.name} is not normalised: run `python tools/notebooks.py clean {path}`"


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    toc = set(_toc_files())
    for p in NOTEBOOKS:
        assert str(p.relative_to(ROOT).with_suffix("")) in toc, f"{p} is not listed in _toc.yml"
    for entry in toc:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml: {entry} missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_starts_with_the_colab_cell(path):
    first_code = next(c for c in _load(path)["cells"] if c["cell_type"] == "code")
    src = _src(first_code)
    assert src == nbtools.colab_cell_source(), "Colab cell differs from the one generated from _config.yml"
    assert 'if "google.colab" in sys.modules' in src
    assert "torch" not in src.split("pip")[1].split("\n")[0], "the Colab cell must never reinstall torch"
    assert "remove-cell" in first_code["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_has_one_title(path):
    md = [_src(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown"]
    titles = [line for m in md for line in m.splitlines() if re.match(r"^# \S", line)]
    assert md and md[0].startswith("# "), "the first markdown cell must start with the '# Title'"
    assert len(titles) == 1, f"expected one H1 title, found {titles}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_glued_numbers_are_defined_and_checked(path):
    cells = _load(path)["cells"]
    md = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    md = re.sub(r"``.*?``", "", md)  # literal examples of the syntax are not uses
    used = set(re.findall(r"\{glue(?::text|:md|)\}`([A-Za-z0-9_]+)", md))
    # glue("key", ...) or glue(f"c01_{name}_acc", ...): an f-string defines a pattern of keys
    names = re.findall(r"glue\(\s*f?[\"']([A-Za-z0-9_{}.\[\]\"' ]+)[\"']\s*,", code)
    patterns = [re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(n)) + "$") for n in names]
    undefined = sorted(k for k in used if not any(p.match(k) for p in patterns))
    assert not undefined, f"glue keys used but never glued: {undefined}"
    if used:
        hidden = [c for c in cells if c["cell_type"] == "code" and "remove-cell" in c["metadata"].get("tags", [])
                  and "assert" in _src(c)]
        assert hidden, "glued numbers need hidden (remove-cell) cells that assert the claims"
    prose = re.sub(r"\{glue[^`]*`[^`]*`", "", md)
    prose = re.sub(r"`[^`]*`|\$[^$]*\$", "", prose)
    typed = re.findall(r"\b\d+(?:\.\d+)?\s?%", prose)
    assert not typed or used, f"percentages typed into the prose without any glue: {typed[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_exercises_have_solutions_and_checks(path):
    cells = _load(path)["cells"]
    md = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    assert "## Exercises" in md, "each section ends with an '## Exercises' section"
    n_solutions = 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        src = _src(cell)
        begins, ends = src.count("### BEGIN SOLUTION"), src.count("### END SOLUTION")
        assert begins == ends, f"cell {i}: unbalanced BEGIN/END SOLUTION markers"
        if begins:
            n_solutions += begins
            assert src.index("### BEGIN SOLUTION") < src.index("### END SOLUTION")
            following = [c for c in cells[i + 1:] if c["cell_type"] == "code"]
            assert following and "assert" in _src(following[0]), \
                f"cell {i}: a solution must be followed by a code cell with assert checks"
    assert n_solutions >= 1


def test_repository_url_lives_in_config_only():
    url, branch = nbtools.repo_url()
    assert url.startswith("https://github.com/")
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", readme):
        assert link == url, f"README links {link}, but _config.yml says {url}"
    for link in re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)", readme):
        assert url.endswith(link), f"README's Colab link points at {link}, _config.yml at {url}"


def test_requirements_are_loose_lower_bounds():
    reqs = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    assert "torch>=2.2" in reqs
    assert not [r for r in reqs if "==" in r], "no == pins in requirements.txt"
    assert any(r.startswith("jupyter-book>=1.0.4,<2") for r in reqs)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.2"' in pyproject and "==" not in pyproject


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in (ROOT / "README.md").read_text() and "make book" in (ROOT / "README.md").read_text()


def test_config_builds_offline_and_strict():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
    js = cfg["sphinx"]["config"]["nb_ipywidgets_js"]
    assert all(not k.startswith("http") for k in js), "widget scripts must be served by the book itself"
    for name in js:
        assert (ROOT / "book" / "_vendor" / "widgets" / name).exists()
    assert cfg["sphinx"]["recursive_update"] is True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_inline_math_is_not_broken_into_a_list_item(path):
    """A wrapped line that starts with '- ', '+ ' or '1. ' inside $...$ becomes a Markdown list item."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        src = re.sub(r"\$\$.*?\$\$|```.*?```", "", _src(cell), flags=re.S)
        dollars = 0
        for line in src.split("\n"):
            if not line.strip():
                dollars = 0
                continue
            assert not (dollars % 2 and re.match(r"^\s*([-+*]|\d+\.)\s", line)), \
                f"cell {i}: inline math broken across a line that starts a list: {line.strip()[:60]!r}"
            dollars += len(re.findall(r"(?<!\\)\$", line))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_equation_labels_sit_on_the_closing_line(path):
    """MyST reads `$$ ... $$ (label)` only when the label follows the closing $$ on the same line."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "markdown":
            stray = re.findall(r"^\s*\((eq-[\w-]+)\)\s*$", _src(cell), flags=re.M)
            assert not stray, f"cell {i}: equation label {stray} on a line of its own is printed as text"
