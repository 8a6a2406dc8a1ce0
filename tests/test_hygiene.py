"""The book's conventions, enforced: clean notebooks, a complete table of contents, the Colab cell,
glued numbers with hidden checks, exercises with solutions and checks, loose requirements."""

from __future__ import annotations

import ast
import builtins
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import assignments  # noqa: E402  (tools/assignments.py: the exercise format, read by the course kit)
import notebooks as nbtools  # noqa: E402  (tools/notebooks.py: cleaning, the Colab cell, the TOC)

NOTEBOOKS = nbtools.all_notebooks()
NB_IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


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
    toc = set(nbtools.toc_files())
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
    requirement = re.search(r'^\s*requirement = "(.*)"$', src, re.M)
    assert requirement, "the Colab cell names the package it installs in one `requirement = ...` line"
    assert "torch" not in requirement.group(1), "the Colab cell must never reinstall torch"
    assert requirement.group(1).endswith("@" + nbtools.colab_ref()), \
        "the Colab cell must install the dlcore release this notebook was written for, not a moving branch"
    assert "remove-cell" in first_code["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_has_one_title(path):
    md = [_src(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown"]
    titles = [line for m in md for line in m.splitlines() if re.match(r"^# \S", line)]
    assert md and md[0].startswith("# "), "the first markdown cell must start with the '# Title'"
    assert len(titles) == 1, f"expected one H1 title, found {titles}"


# --- Every number the prose states is computed, glued, and asserted as stated ---------------------------
#
# The contract (STYLE.md): a result in the text comes from `glue("key", value)`, the text cites it with
# {glue:text}`key`, and a hidden (remove-cell) cell asserts the sentence's claim about that value. A value the
# notebook chose rather than measured is glued with `setting=True`, and a wall-clock time with `timing=True`
# (reported, never asserted); neither needs an assert. Numbers typed into the
# prose (percentages, speed-ups, 1e-15, "twelve orders of magnitude") need an entry with a reason in
# tests/prose_numbers.yml. These checks read the code with `ast`, so they see what is asserted, not just
# whether some assert exists.

ALLOWED_NUMBERS = ROOT / "tests" / "prose_numbers.yml"
GLUE_ROLE = re.compile(r"\{glue(?::text|:md|:any|:figure|)\}`(?:[^`]*?::)?([A-Za-z_][A-Za-z0-9_]*)")
CROSS_PAGE = re.compile(r"\{glue(?::\w+)?\}`([^`]*?)::([A-Za-z_][A-Za-z0-9_]*)")  # {glue:text}`doc.ipynb::key`
TYPED_NUMBER = re.compile(
    r"\b\d+(?:[.,]\d+)?\s?(?:%|percent\b)"                                     # 75 %, 93%, 10 percent
    r"|\b\d+(?:\.\d+)?\s?(?:×|x\b)(?!\s?\d)"                                   # 3× faster, 10x
    r"|\b\d+(?:\.\d+)?e[-+]?\d+\b"                                              # 1e-15, 12e-3
    r"|\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|twenty)\s+orders?\s+of\s+magnitude", re.I)
TIMERS = {"best_time", "median_time", "perf_counter", "time", "monotonic", "timeit", "process_time"}


def _code_tree(src: str, where: str) -> ast.Module:
    """Parse a code cell, ignoring IPython magics and shell escapes."""
    lines = [("pass" if ln.lstrip().startswith(("%", "!")) else ln) for ln in src.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError as e:  # pragma: no cover - a notebook that does not parse fails nbval anyway
        raise AssertionError(f"{where}: cannot parse code cell: {e}") from e


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _hidden(cell: dict) -> bool:
    return "remove-cell" in cell["metadata"].get("tags", [])


def _glue_calls(cells: list[dict]):
    """Yield (cell index, key pattern, value names, is_setting) for every glue(...) call in the notebook."""
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        tree = _code_tree(_src(cell), f"cell {i}")
        loops: list[ast.AST] = []

        def visit(node, loops=loops, i=i):
            is_loop = isinstance(node, (ast.For, ast.comprehension))
            if is_loop:
                loops.append(node)
            if isinstance(node, ast.Call) and (
                    getattr(node.func, "id", None) == "glue" or getattr(node.func, "attr", None) == "glue"):
                # glue(name, value, ...) with either argument positional or by keyword
                given = dict(zip(("name", "value"), node.args)) | {k.arg: k.value for k in node.keywords}
                if "name" not in given or "value" not in given:
                    raise AssertionError(f"cell {i}: glue(...) call without a name and a value: "
                                         f"{ast.unparse(node)}")
                key = given["name"]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    pattern = re.escape(key.value)
                elif isinstance(key, ast.JoinedStr):
                    pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"\w+"
                                      for v in key.values)
                else:
                    pattern = r"\w+"
                names = _names(given["value"])
                for loop in loops:
                    names |= _names(loop.iter)
                setting = any(k.arg in ("setting", "timing") and isinstance(k.value, ast.Constant)
                              and k.value.value is True for k in node.keywords)
                yield i, re.compile(pattern + "$"), names, setting
            for child in ast.iter_child_nodes(node):
                yield from visit(child, loops, i)
            if is_loop:
                loops.pop()

        yield from visit(tree)


def _imported_names(cells: list[dict]) -> set[str]:
    out: set[str] = set(dir(builtins))
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            for node in ast.walk(_code_tree(_src(cell), f"cell {i}")):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out


def _all_markdown() -> str:
    """Markdown of every notebook and book page: a key may be cited on another page (cross-page glue)."""
    parts = [_src(c) for p in NOTEBOOKS for c in _load(p)["cells"] if c["cell_type"] == "markdown"]
    parts += [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")]
    parts += [p.read_text(encoding="utf-8") for p in (ROOT / "chapters").rglob("*.md")]
    return "\n".join(parts)


def _cited_keys(md: str) -> set[str]:
    md = re.sub(r"``.*?``", "", md, flags=re.S)  # literal examples of the syntax are not uses
    return set(GLUE_ROLE.findall(md))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_cited_glue_keys_are_glued_here(path):
    cells = _load(path)["cells"]
    md = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    md = re.sub(r"\{glue(?::\w+)?\}`/[^`]*::[^`]*`", "", md)  # cross-page references are checked by the build
    patterns = [p for _, p, _, _ in _glue_calls(cells)]
    undefined = sorted(k for k in _cited_keys(md) if not any(p.match(k) for p in patterns))
    assert not undefined, f"glue keys cited but never glued in this notebook: {undefined}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_every_glued_value_is_cited(path):
    """Cited in this notebook's own text, or from another page by a cross-page reference that names this
    notebook ({glue:text}`path/to/notebook.ipynb::key`); the same key cited by another notebook is no use."""
    own = "\n".join(_src(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown")
    cited = _cited_keys(CROSS_PAGE.sub(" ", own))
    cited |= {key for target, key in CROSS_PAGE.findall(re.sub(r"``.*?``", "", _all_markdown(), flags=re.S))
              if Path(target.strip()).stem == path.stem}
    unused = [p.pattern[:-1] for _, p, _, _ in _glue_calls(_load(path)["cells"])
              if not any(p.match(k) for k in cited)]
    assert not unused, f"glued but never cited in the text (cite it or stop gluing it): {unused}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_every_glued_result_is_asserted_in_a_hidden_cell(path):
    """A glued result's value (one of the names it is computed from) appears in a hidden cell's assert."""
    cells = _load(path)["cells"]
    modules = _imported_names(cells)
    asserted: set[str] = set()
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and _hidden(cell):
            for node in ast.walk(_code_tree(_src(cell), f"cell {i}")):
                if isinstance(node, ast.Assert):
                    asserted |= _names(node)
    asserted -= modules
    missing = []
    for i, pattern, names, setting in _glue_calls(cells):
        if setting:
            continue
        if not (names - modules) & asserted:
            missing.append(f"cell {i}: {pattern.pattern[:-1]} (from {sorted(names - modules) or 'a literal'})")
    assert not missing, ("glued results that no hidden (remove-cell) assert checks; assert the sentence's "
                         "claim, or glue with setting=True if the value is a choice, not a result:\n  "
                         + "\n  ".join(missing))


def _prose(md: str) -> str:
    md = re.sub(r"```.*?```|\$\$.*?\$\$", " ", md, flags=re.S)
    md = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", md)      # roles: glue, cite, ref, ...
    md = re.sub(r"`[^`]*`|\$[^$]*\$", " ", md)       # code spans and inline math
    md = re.sub(r"\]\([^)]*\)|https?://\S+", " ", md)  # link targets
    return md


def _allowed_numbers() -> dict:
    if not ALLOWED_NUMBERS.exists():
        return {}
    data = yaml.safe_load(ALLOWED_NUMBERS.read_text()) or {}
    for nb, entries in data.items():
        for e in entries:
            assert set(e) == {"text", "why"} and e["why"].strip(), \
                f"{ALLOWED_NUMBERS.name}: {nb}: each entry needs 'text' and a reason in 'why': {e}"
    return data


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_numbers_typed_into_the_prose_are_allowed_with_a_reason(path):
    md = "\n".join(_src(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown")
    found = [re.sub(r"\s+", " ", m.group(0)) for m in TYPED_NUMBER.finditer(_prose(md))]
    allowed = {re.sub(r"\s+", " ", e["text"]) for e in _allowed_numbers().get(str(path.relative_to(ROOT)), [])}
    typed = sorted({f for f in found if f not in allowed})
    assert not typed, (f"results typed into the prose: {typed}. Glue the computed value, or add the text with a "
                       f"reason to {ALLOWED_NUMBERS.relative_to(ROOT)}")
    stale = sorted(a for a in allowed if a not in found)
    assert not stale, f"{ALLOWED_NUMBERS.name} allows text that is no longer in the notebook: {stale}"


def test_allowed_numbers_name_existing_notebooks():
    for nb in _allowed_numbers():
        assert (ROOT / nb).exists(), f"{ALLOWED_NUMBERS.name} names {nb}, which does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_no_assert_depends_on_timing(path):
    """Pass/fail must not depend on machine load: no assert reads a value derived from a timer.

    A ratio with a very wide margin may be asserted if the assert line says why, with `# timing-margin: ...`.
    """
    trees = [(i, _src(c), _code_tree(_src(c), f"cell {i}")) for i, c in enumerate(_load(path)["cells"])
             if c["cell_type"] == "code"]
    timers, timed = set(TIMERS), set()
    for _ in range(3):  # a timer wrapped in a helper function, a result stored in a dict: follow them
        for _, _, tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                    called = {getattr(c.func, "id", getattr(c.func, "attr", None))
                              for c in ast.walk(node) if isinstance(c, ast.Call)}
                    if called & timers and isinstance(node, ast.FunctionDef):
                        timers.add(node.name)
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                    called = {getattr(c.func, "id", getattr(c.func, "attr", None))
                              for c in ast.walk(node.value) if isinstance(c, ast.Call)}
                    if called & timers or _names(node.value) & timed:
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                            timed |= _names(t)
    bad = []
    for i, src, tree in trees:
        lines = src.split("\n")
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and _names(node) & timed:
                line = lines[node.lineno - 1]
                if "# timing-margin:" not in line:
                    bad.append(f"cell {i}: {line.strip()[:80]}")
    assert not bad, "asserts on timings (report timings; assert counts, or mark a wide ratio with " \
                    "'# timing-margin: why'):\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_exercises_have_solutions_and_checks(path):
    """An '## Exercises' section whose exercises the course kit can read: the one parser, in
    tools/assignments.py, fails naming the cell (unbalanced markers, no visible assert check after a
    solution, a check before its solution, a solution without a prompt)."""
    nb = _load(path)
    md = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "## Exercises" in md, "each section ends with an '## Exercises' section"
    assert assignments.parse_exercises(nb, path.relative_to(ROOT)), "the Exercises section has no exercise"


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
    """A wrapped line that starts with '- ', '+ ', '1. ', '>' or '#' inside $...$ becomes a list item, a quote
    or a heading."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        src = re.sub(r"\$\$.*?\$\$|```.*?```", "", _src(cell), flags=re.S)
        dollars = 0
        for line in src.split("\n"):
            if not line.strip():
                dollars = 0
                continue
            assert not (dollars % 2 and re.match(r"^\s*(>|#|([-+*]|\d+\.)\s)", line)), \
                f"cell {i}: inline math broken across a line that starts a list: {line.strip()[:60]!r}"
            dollars += len(re.findall(r"(?<!\\)\$", line))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_no_role_inside_math(path):
    """A role such as {glue:text}`key` inside $...$ is not expanded: the page shows TeX source (or a TeX
    error, since a key like c06_3_C reads as a double subscript). Write `$C =$ {glue:text}`key`` instead."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        src = re.sub(r"```.*?```", "", _src(cell), flags=re.S)
        for math in re.findall(r"\$\$.*?\$\$|(?<!\\)\$[^$]+?(?<!\\)\$", src, flags=re.S):
            assert not re.search(r"\{(glue|ref|eq|cite|doc)[:}]", math), f"cell {i}: a role inside math: {math[:80]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_equation_labels_sit_on_the_closing_line(path):
    """MyST reads `$$ ... $$ (label)` only when the label follows the closing $$ on the same line."""
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "markdown":
            stray = re.findall(r"^\s*\((eq-[\w-]+)\)\s*$", _src(cell), flags=re.M)
            assert not stray, f"cell {i}: equation label {stray} on a line of its own is printed as text"


# --- The checks above, checked: each must catch a planted violation (a check that cannot fail is no check) --

def _synthetic(tmp_path: Path, cells: list[dict]) -> Path:
    path = tmp_path / "synthetic.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _code(src: str, hidden: bool = False) -> dict:
    return {"cell_type": "code", "metadata": {"tags": ["remove-cell"]} if hidden else {}, "source": src,
            "outputs": [], "execution_count": None}


def _md(src: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": src}


GLUED = "from dlcore.book import glue\nacc = 0.93\nglue('zz_acc', acc)"


@pytest.mark.parametrize("cells, ok", [
    ([_code(GLUED), _code("assert acc > 0.9", hidden=True)], True),
    ([_code(GLUED)], False),  # no assert at all
    ([_code("from dlcore.book import glue\nacc = 0.93\nglue('zz_acc', value=acc)")], False),  # keyword form too
    ([_code("from dlcore.book import glue\nacc = 0.93\nglue(name='zz_acc', value=acc)"),
      _code("assert acc > 0.9", hidden=True)], True),
    ([_code(GLUED), _code("assert acc > 0.9")], False),  # a visible assert (an exercise check) does not count
    ([_code(GLUED), _code("other = 1\nassert other > 0", hidden=True)], False),  # asserts something else
    ([_code("import math\nfrom dlcore.book import glue\nglue('zz_pi', math.pi)"),
      _code("assert math.pi > 3", hidden=True)], False),  # a module name is no asserted result
    ([_code("from dlcore.book import glue\nglue('zz_n', 10, setting=True)")], True),  # a setting needs none
    ([_code("from dlcore.book import glue\nres = {'a': 1}\nfor k, v in res.items():\n    glue(f'zz_{k}', v)"),
      _code("assert all(x > 0 for x in res.values())", hidden=True)], True),  # a loop's iterable counts
], ids=["asserted", "no-assert", "keyword-no-assert", "keyword-asserted", "visible-assert", "other-name",
        "module-only", "setting", "loop"])
def test_the_glue_assert_check_catches_unasserted_results(tmp_path, cells, ok):
    path = _synthetic(tmp_path, cells)
    if ok:
        test_every_glued_result_is_asserted_in_a_hidden_cell(path)
    else:
        with pytest.raises(AssertionError, match="glued results that no hidden"):
            test_every_glued_result_is_asserted_in_a_hidden_cell(path)


def test_the_glue_citation_checks_catch_unused_and_undefined_keys(tmp_path):
    path = _synthetic(tmp_path, [_md("# T\n\nAccuracy {glue:text}`zz_acc:.1%`."), _code(GLUED)])
    test_every_glued_value_is_cited(path)
    test_cited_glue_keys_are_glued_here(path)
    path = _synthetic(tmp_path, [_md("# T\n\nNothing cited."), _code(GLUED)])
    with pytest.raises(AssertionError, match="zz_acc"):
        test_every_glued_value_is_cited(path)
    elsewhere = sorted(_cited_keys(_all_markdown()))[0]  # cited by a chapter notebook, not by this one
    path = _synthetic(tmp_path, [_md("# T"), _code(f"from dlcore.book import glue\nv = 1\nglue({elsewhere!r}, v)")])
    with pytest.raises(AssertionError, match=elsewhere):
        test_every_glued_value_is_cited(path)
    path = _synthetic(tmp_path, [_md("# T\n\n{glue:text}`zz_acc` and {glue:text}`zz_never`."), _code(GLUED)])
    with pytest.raises(AssertionError, match="zz_never"):
        test_cited_glue_keys_are_glued_here(path)


TIMED = "import time\nt0 = time.perf_counter()\nx = sum(range(10))\nseconds = time.perf_counter() - t0\n"
HELPER = ("import time\ndef bench(f):\n    t0 = time.perf_counter()\n    f()\n    return time.perf_counter() - t0\n"
          "r = {'loop': bench(len), 'vec': bench(len)}\nratio = r['loop'] / r['vec']\n")


@pytest.mark.parametrize("src, ok", [
    (TIMED + "assert seconds < 1", False),
    (HELPER + "assert ratio > 5", False),  # a timer inside a helper, a result in a dict
    (HELPER + "assert ratio > 5  # timing-margin: 100x measured", True),
    (TIMED + "assert x == 45", True),
], ids=["direct", "helper", "margin", "count"])
def test_the_timing_check_catches_asserts_on_timings(tmp_path, src, ok):
    path = _synthetic(tmp_path, [_code(src, hidden=True)])
    if ok:
        test_no_assert_depends_on_timing(path)
    else:
        with pytest.raises(AssertionError, match="asserts on timings"):
            test_no_assert_depends_on_timing(path)


@pytest.mark.parametrize("text, found", [
    ("accuracy rose to 93 % (from 80%) on the test set", ["93 %", "80%"]),
    ("about 3× faster, 10x in the best case; a 3 x 3 grid", ["3×", "10x"]),
    ("an error of 1e-15, or 12e-3", ["1e-15", "12e-3"]),
    ("twelve orders of magnitude", ["twelve orders of magnitude"]),
    ("a $3 \\times 3$ matrix, `1e-15` in code, {glue:text}`acc:.1%` and [a link](x_50%.html)", []),
])
def test_typed_numbers_are_found_in_prose_only(text, found):
    assert [re.sub(r"\s+", " ", m.group(0)) for m in TYPED_NUMBER.finditer(_prose(text))] == found


def test_the_role_in_math_check_catches_a_glue_inside_dollars(tmp_path):
    test_no_role_inside_math(_synthetic(tmp_path, [_md("With $C =$ {glue:text}`zz_c` channels, $x_1$ and $$a$$.")]))
    with pytest.raises(AssertionError, match="a role inside math"):
        test_no_role_inside_math(_synthetic(tmp_path, [_md("With $C = {glue:text}`zz_c`$ channels.")]))
