"""The course kit (tools/assignments.py): chapter exercises -> otter-grader assignments.

Fast tests parse every chapter notebook and check the converter on small synthetic notebooks. Slower
tests run ``otter assign`` on every chapter (the leak test) and execute notebooks: a synthetic one end to
end, and a rotating sample of chapter notebooks (two per commit, chosen by a hash of HEAD), where every
exercise's stub must fail its check (grade zero) and its worked solution pass (full marks).
``make assignments-check`` does the same for every chapter notebook.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import assignments as A  # noqa: E402

otter = pytest.importorskip("otter", reason="otter-grader is in the `course` extra (make venv installs it)")

COLAB = ('# Colab setup\nimport subprocess\nimport sys\n\nif "google.colab" in sys.modules:\n'
         '    requirement = "dlcore @ git+https://example.org/x/y@v0.1.0"\n'
         '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)')


def code(src, tags=None, **meta):
    m = dict(meta)
    if tags:
        m["tags"] = tags
    return {"cell_type": "code", "metadata": m, "source": src, "outputs": [], "execution_count": None}


def md(src):
    return {"cell_type": "markdown", "metadata": {}, "source": src}


def notebook(cells):
    cells = [dict(c, id=f"c{i:03d}") for i, c in enumerate([code(COLAB, ["remove-cell"])] + cells)]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


SQUARE = "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"
GOOD = [
    md("# Demo\n\nSome prose."),
    code("import math\ndata = [1, 2, 3]"),
    code("assert len(data) == 3  # a claim of the prose", ["remove-cell"]),
    md("## Exercises\n\n**Exercise 1 (squares).** Write `square(x)`."),
    code(SQUARE),
    code("assert square(3) == 9\nassert square(-2) == 4"),
    md("**Exercise 2 (why).** Why is a square never negative? Then write `total`."),
    code('### BEGIN SOLUTION\nanswer = """Because (-x)(-x) = x x."""\ntotal = sum(square(v) for v in data)\n'
         "### END SOLUTION", points=2, difficulty="hard"),
    code("assert total == 14"),
]


# ------------------------------------------------------------------------------------------ parsing
def test_parse_synthetic():
    ex = A.parse_exercises(notebook(GOOD), "demo.ipynb")
    assert [(e.number, e.title, e.points, e.difficulty) for e in ex] == [
        (1, "squares", 1, A.DEFAULT_DIFFICULTY), (2, "why", 2, "hard")]
    assert [(e.prompt, e.solution, e.check) for e in ex] == [(4, 5, 6), (7, 8, 9)]


def bad(cells, match):
    with pytest.raises(A.ExerciseFormatError, match=match):
        A.parse_exercises(notebook(cells), "chapters/99/bad.ipynb")


def test_unbalanced_markers_name_notebook_and_cell():
    cells = list(GOOD)
    cells[4] = code("def square(x):\n    ### BEGIN SOLUTION\n    return x * x")
    bad(cells, r"chapters/99/bad\.ipynb: cell 5: line 2: BEGIN SOLUTION without END SOLUTION")
    cells[4] = code("def square(x):\n    return x * x\n    ### END SOLUTION")
    bad(cells, r"bad\.ipynb: cell 5: line 3: END SOLUTION without BEGIN")
    cells[4] = code("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    bad(cells, r"cell 5: line 2: BEGIN SOLUTION inside")
    cells[4] = code("def square(x):\n    # BEGIN SOLUTION\n    return x * x\n    # END SOLUTION")
    bad(cells, r"cell 5: line 2: write the marker as '### BEGIN SOLUTION'")


def test_exercise_without_check():
    cells = list(GOOD)
    cells[5] = code("print(square(3))")  # no assert
    bad(cells, r"bad\.ipynb: cell 6: Exercise 1 has no check")
    cells[5] = code("assert square(3) == 9", ["remove-cell"])  # hidden: a student never sees it
    bad(cells, r"cell 6: Exercise 1 has no check")
    bad(GOOD[:5], r"cell 5: Exercise 1 has no check")  # the notebook ends after the solution
    cells = GOOD[:5] + GOOD[6:]  # the next prompt follows the solution directly
    bad(cells, r"cell 5: Exercise 1 has no check")


def test_check_before_its_solution():
    cells = GOOD[:4] + [code("assert square(3) == 9")] + [GOOD[4], code("assert square(2) == 4")] + GOOD[6:]
    bad(cells, r"bad\.ipynb: cell 5: Exercise 1's check runs before its solution cell 6")


def test_exercise_without_solution_and_solution_without_exercise():
    bad(GOOD[:4] + [code("x = 1"), code("assert x == 1")] + GOOD[6:], r"cell 4: Exercise 1 has no solution cell")
    bad([GOOD[0], code(SQUARE), code("assert square(2) == 4")], r"cell 2: solution cell without")


def test_build_stops_before_otter_naming_the_notebook_and_cell(tmp_path, capsys):
    path = tmp_path / "chapters" / "99_demo" / "99_1_bad.ipynb"
    path.parent.mkdir(parents=True)
    cells = list(GOOD)
    cells[5] = code("print(square(3))")
    path.write_text(json.dumps(notebook(cells)))
    assert A.main(["build", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "99_1_bad.ipynb: cell 6: Exercise 1 has no check" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is written for a bad notebook"


def test_points_and_difficulty_are_validated():
    cells = list(GOOD)
    cells[4] = code(SQUARE, points=0)
    bad(cells, r"cell 5: points must be a positive number")
    cells[4] = code(SQUARE, difficulty="tricky")
    bad(cells, r"cell 5: difficulty must be one of")


def test_every_chapter_notebook_parses():
    counts = {}
    for p in A.all_notebooks():
        ex = A.parse_exercises(A._load(p), p.relative_to(ROOT))
        assert ex, f"{p}: no exercises"
        counts[p.parent.name] = counts.get(p.parent.name, 0) + len(ex)
    assert all(n > 0 for n in counts.values()), counts


# ------------------------------------------------------------------------------------------ master notebook
def test_master_notebook_has_otter_blocks():
    nb = notebook(GOOD)
    master = A.master_notebook(nb, "demo.ipynb")
    cells = master["cells"]
    raws = ["".join(c["source"]).splitlines()[0] for c in cells if c["cell_type"] == "raw"]
    assert raws[0] == "# ASSIGNMENT CONFIG"
    assert raws[1:] == ["# BEGIN QUESTION", "# BEGIN SOLUTION", "# END SOLUTION", "# BEGIN TESTS", "# END TESTS",
                        "# END QUESTION"] * 2
    q2 = [c for c in cells if c["cell_type"] == "raw" and "exercise_02" in c["source"]][0]["source"]
    assert "points: 2" in q2
    sources = ["".join(c["source"]) for c in cells]
    assert not any("### BEGIN SOLUTION" in s for s in sources), "otter wants one-hash markers"
    assert any("    # BEGIN SOLUTION" in s for s in sources), "the marker keeps its indentation"
    assert not any("a claim of the prose" in s for s in sources), "hidden cells never reach the master"
    assert "otter-grader" in sources[1] and "google.colab" in sources[1], "the Colab cell installs otter too"
    assert 'grader = otter.Notebook("demo.ipynb", tests_dir="tests/demo")' in sources[2]
    assert any("*2 points · hard*" in s for s in sources)


def test_stub_source_uses_otters_rule():
    assert A.stub_source(SQUARE) == "def square(x):\n    ..."


# ------------------------------------------------------------------------------------------ leaks
def leaks(chapter_nb: dict, student_nb: dict) -> list[str]:
    """Solution text or hidden asserts of the chapter notebook found in the student notebook."""
    chapter, exercises = chapter_nb["cells"], A.parse_exercises(chapter_nb)
    student_text = "\n".join(A._src(c) for c in student_nb["cells"])
    found = []
    student_code = "\n".join(A._src(c) for c in student_nb["cells"] if c["cell_type"] == "code")
    if re.search(r"BEGIN SOLUTION|END SOLUTION", student_code):  # the prose may name the markers
        found.append("solution markers")
    if "otter_assign_solution_cell" in json.dumps(student_nb):
        found.append("otter solution cell")
    solution_idx = {e.solution for e in exercises}
    # lines that occur only inside solution regions / hidden cells (a line also shown elsewhere is no leak)
    public = set()
    for i, c in enumerate(chapter):
        if i not in solution_idx and not A.is_hidden(c):
            public.update(line.strip() for line in A._src(c).splitlines())
    student_lines = {line.strip() for line in student_text.splitlines()}
    for e in exercises:
        inside = False
        for line in A._src(chapter[e.solution]).splitlines():
            s = line.strip()
            if s == A.BEGIN:
                inside = True
            elif s == A.END:
                inside = False
            elif inside and len(s) > 3 and s not in public and s in student_lines:
                found.append(f"Exercise {e.number}: solution line {s!r}")
    for i, c in enumerate(chapter):
        if A.is_hidden(c):
            for line in A._src(c).splitlines():
                s = line.strip()
                if s.startswith("assert") and s not in public and s in student_lines:
                    found.append(f"cell {i}: hidden assert {s!r}")
    return found


def test_leak_detector_catches_a_leak():
    chapter = notebook(GOOD)
    student = notebook([GOOD[0], code("def square(x):\n    return x * x")])
    assert leaks(chapter, student) == ["Exercise 1: solution line 'return x * x'"]
    student = notebook([code("assert len(data) == 3  # a claim of the prose")])
    assert [m for m in leaks(chapter, student) if "hidden assert" in m]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every chapter's assignments, generated once (otter assign on every chapter notebook)."""
    out = tmp_path_factory.mktemp("assignments")
    results = A.build(A.all_notebooks(), out, jobs=2)
    return out, results


def test_build_writes_every_chapter(built):
    out, results = built
    assert len(results) == len(A.all_notebooks())
    for p in A.all_notebooks():
        d = out / p.parent.name
        assert (d / "student" / p.name).exists() and (d / "solutions" / p.name).exists()
        assert (d / "autograder" / f"{p.stem}.zip").stat().st_size > 0
        assert sorted(f.name for f in (d / "student" / "tests" / p.stem).iterdir()) == [
            f"{e.name}.py" for e in A.parse_exercises(A._load(p))]
        manifest = json.loads((d / "exercises.json").read_text())
        assert p.stem in {Path(m["notebook"]).stem for m in manifest}


def test_no_solution_or_hidden_assert_leaks_into_a_student_notebook(built):
    out, _ = built
    problems = {}
    for p in A.all_notebooks():
        student = A._load(out / p.parent.name / "student" / p.name)
        found = leaks(A._load(p), student)
        ex = A.parse_exercises(A._load(p))
        checks = sum(bool(re.fullmatch(r'grader\.check\("exercise_\d\d"\)', A._src(c).strip()))
                     for c in student["cells"])
        if checks != len(ex):
            found.append(f"{checks} grader.check cells for {len(ex)} exercises")
        if found:
            problems[str(p.relative_to(ROOT))] = found
    assert not problems, problems


def test_autograder_zip_installs_dlcore(built):
    import zipfile

    out, _ = built
    p = A.all_notebooks()[0]
    with zipfile.ZipFile(out / p.parent.name / "autograder" / f"{p.stem}.zip") as z:
        names = z.namelist()
        env = z.read("environment.yml").decode()  # otter puts the requirements into the conda environment
        assert "dlcore @ git+" in env and A.TORCH_CPU_INDEX in env
        assert any(n.startswith("tests/exercise_01") for n in names)


# ------------------------------------------------------------------------------------------ execution
def _synthetic(tmp_path, cells):
    path = tmp_path / "chapters" / "99_demo" / "99_1_demo.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(notebook(cells)))
    out = tmp_path / "out"
    A.build([path], out, jobs=1)
    return A.check_one(str(out / "99_demo" / "student" / path.name), str(path))


def test_synthetic_notebook_end_to_end(tmp_path):
    results = _synthetic(tmp_path, GOOD)
    assert set(results) == {"exercise_01", "exercise_02"}
    assert A.verdicts(results) == []
    assert results["exercise_02"]["solution_grade"][:2] == [2, 2]
    assert results["exercise_01"]["stub_grade"][0] == 0


def test_a_weak_check_is_reported(tmp_path):
    cells = list(GOOD)
    cells[5] = code("assert square is not None")  # the stub `def square(x): ...` passes this
    problems = A.verdicts(_synthetic(tmp_path, cells))
    assert problems and all(p.startswith("exercise_01: WEAK CHECK") for p in problems), problems


def test_verdicts_name_every_kind_of_problem():
    ok = {"stub_error": "NameError: x", "stub_grade": [0, 1, "NameError"], "solution_error": None,
          "solution_grade": [1, 1, ""], "final_grade": [1, 1, ""]}
    assert A.verdicts({"exercise_01": ok}) == []
    cases = {
        "weak": (dict(ok, stub_grade=[1, 1, ""]), ["WEAK CHECK"]),
        "stub never graded": (dict(ok, stub_grade=None), ["WEAK CHECK"]),
        "solution fails": (dict(ok, solution_error="ValueError: v", solution_grade=[0, 1, "ValueError: v"]),
                           ["worked solution cell fails", "solution scores 0 of 1"]),
        "redefined later": (dict(ok, final_grade=[0, 1, "AssertionError"]), ["graded after the whole notebook"]),
        "never graded at the end": (dict(ok, final_grade=None), ["graded after the whole notebook"]),
        "notebook crashed": ({"error": "CellExecutionError: boom"}, ["did not run to the end: CellExecutionError"]),
    }
    for case, (result, expected) in cases.items():
        problems = A.verdicts({"exercise_01": result})
        assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), (case, problems)


# two notebooks per commit; ASSIGNMENTS_SAMPLE=0 skips them, a larger number checks more
SAMPLE = A.rotating_sample(A.all_notebooks(), int(os.environ.get("ASSIGNMENTS_SAMPLE", "2")))


class TestRotatingSample:
    """Two chapter notebooks per commit, chosen by a hash of HEAD (``make assignments-check`` runs them all).
    A class of its own, so that pytest-xdist's ``--dist loadscope`` may run it beside the rest of the file."""

    @pytest.mark.parametrize("path", SAMPLE, ids=[p.stem for p in SAMPLE])
    def test_stubs_fail_and_solutions_pass(self, path, tmp_path):
        A.build([path], tmp_path, jobs=1)
        results = A.check_one(str(tmp_path / path.parent.name / "student" / path.name), str(path))
        assert A.verdicts(results) == [], results


# ------------------------------------------------------------------------------------------ the HTML book
def test_clean_tags_solution_cells_hide_input_and_keeps_points():
    from notebooks import clean

    nb = clean(notebook([GOOD[3], code(SQUARE, points=2, difficulty="easy"), GOOD[5]]))
    sol = nb["cells"][2]
    assert "hide-input" in sol["metadata"]["tags"]
    assert sol["metadata"]["points"] == 2 and sol["metadata"]["difficulty"] == "easy"
    assert "hide-input" not in nb["cells"][3]["metadata"].get("tags", []), "the check stays visible"
    assert clean(nb)["cells"][2]["metadata"]["tags"] == ["hide-input"], "cleaning twice adds nothing"


def test_every_worked_solution_is_collapsed_in_the_book():
    missing = [f"{p.relative_to(ROOT)}: cell {e.solution}" for p in A.all_notebooks()
               for e in A.parse_exercises(A._load(p))
               if "hide-input" not in A._load(p)["cells"][e.solution]["metadata"].get("tags", [])]
    assert not missing, f"run `python tools/notebooks.py clean` on: {missing}"


HTML = ROOT / "_build" / "html"


@pytest.mark.html
def test_built_pages_show_solutions_collapsed_and_checks_open():
    """In the built book each solution sits in a closed <details> toggle; the check cell does not."""
    if not (HTML / "index.html").exists():
        pytest.fail("build the book first: python tools/build_book.py --strict")
    problems = []
    for p in A.all_notebooks():
        page = (HTML / p.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
        # each code cell up to the end of its input (a cell's chunk would otherwise run into the prose after it)
        cells = [c[:c.find("</pre>")] for c in re.split(r'<div class="cell[ "]', page)[1:]]
        solution_cells = [c for c in cells if "### BEGIN SOLUTION" in c]
        if len(solution_cells) != len(A.parse_exercises(A._load(p))):
            problems.append(f"{p.name}: {len(solution_cells)} solution cells on the page")
        for c in solution_cells:
            head = c[:c.index("### BEGIN SOLUTION")]
            if "tag_hide-input" not in head or not re.search(r"<details(?![^>]*\bopen\b)[^>]*>", head):
                problems.append(f"{p.name}: a worked solution is not collapsed")
    assert not problems, problems


@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")  # pandas 3 about otter's own code
def test_otter_run_scores_solutions_full_and_stubs_zero(tmp_path):
    """The real grading path: otter's autograder zip, run on a submitted notebook as Gradescope would."""
    from kernel_lock import kernel_start_lock
    from otter.api import grade_submission

    path = tmp_path / "chapters" / "99_demo" / "99_1_demo.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(notebook(GOOD)))
    out = tmp_path / "out" / "99_demo"
    A.build([path], tmp_path / "out", jobs=1)
    for kind, expected in [("solutions", {"exercise_01": 1, "exercise_02": 2}),
                           ("student", {"exercise_01": 0, "exercise_02": 0})]:
        with kernel_start_lock():  # otter starts its kernel itself: hold the lock for the whole (short) run
            results = grade_submission(str(out / kind / path.name), str(out / "autograder" / "99_1_demo.zip"),
                                       quiet=True)
        assert {q: results.get_score(q) for q in expected} == expected, kind


def test_a_crash_outside_the_exercises_is_reported_for_that_notebook_only(monkeypatch):
    """check goes on with the other notebooks and reports the crash as a FAIL, not a traceback."""
    def boom(student, chapter):
        raise RuntimeError("An error occurred while executing cell 7:\nZeroDivisionError: division by zero")

    monkeypatch.setattr(A, "check_one", boom)
    student, results = A._check_pair(("s.ipynb", "c.ipynb"))
    assert student == "s.ipynb"
    expected = "notebook: did not run to the end: RuntimeError: ZeroDivisionError: division by zero"
    assert A.verdicts(results) == [expected]


def test_building_one_notebook_keeps_its_siblings_kits(tmp_path):
    chapter = A.all_notebooks()[0].parent
    first, second = sorted(chapter.glob("*.ipynb"))[:2]
    A.build([first, second], tmp_path, jobs=1)
    A.build([second], tmp_path, jobs=1)
    kit = tmp_path / chapter.name
    assert (kit / "student" / first.name).exists() and (kit / "autograder" / f"{first.stem}.zip").exists()
    names = [r["notebook"] for r in json.loads((kit / "exercises.json").read_text())]
    assert names == sorted(str(p.relative_to(A.ROOT)) for p in (first, second))
    A.build([second], tmp_path, jobs=1, fresh=True)  # a whole-book build starts each chapter afresh
    assert not (kit / "student" / first.name).exists()
