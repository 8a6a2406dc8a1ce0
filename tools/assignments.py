"""Turn every chapter's exercises into graded course assignments (otter-grader).

    python tools/assignments.py build [--jobs N] [NOTEBOOK ...]    write _build/assignments/<chapter>/
    python tools/assignments.py check [--jobs N] [--sample K] [--report FILE] [NOTEBOOK ...]
        build, then execute each student notebook once: at every exercise the stub must score zero with
        otter's grader and the worked solution full marks (also when graded at the end, as otter run does)

The chapters keep their readable exercise format (see book/instructor.md):

* a markdown prompt starting ``**Exercise N (title).**``;
* the next code cell holds the worked solution between ``### BEGIN SOLUTION`` / ``### END SOLUTION``
  (optional cell metadata ``points`` (default 1) and ``difficulty`` (easy/medium/hard, default medium));
* the code cell after it holds the assert checks.

This module is a thin, tested converter: it writes otter's *master notebook* (raw-cell
``# BEGIN QUESTION`` … ``# END QUESTION`` blocks, one-hash ``# BEGIN SOLUTION`` markers, the check as an
exception-based otter test), lets ``otter assign`` produce the student notebook and the autograder zip,
and arranges the results as

    _build/assignments/<chapter>/student/<notebook>.ipynb      solutions stubbed, hidden cells removed
    _build/assignments/<chapter>/student/tests/<notebook>/     its checks, run by grader.check("exercise_NN")
    _build/assignments/<chapter>/autograder/<notebook>.zip     otter/Gradescope autograder
    _build/assignments/<chapter>/solutions/<notebook>.ipynb    worked solutions and checks, hidden cells removed
    _build/assignments/<chapter>/exercises.json                exercises, points and difficulty

Cells tagged ``remove-cell`` (the hidden asserts behind the prose) never reach students; the Colab
setup cell is kept (and also installs otter-grader on Colab).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tools") not in sys.path:  # the sibling modules notebooks.py and kernel_lock.py
    sys.path.insert(0, str(ROOT / "tools"))
CHAPTERS = ROOT / "chapters"
OUT = ROOT / "_build" / "assignments"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PROMPT_RE = re.compile(r"^\*\*Exercise (\d+) \((.+?)\)\.\*\*", re.M)  # at the start of a line
MARKER_RE = re.compile(r"^(\s*)#{1,3} ?(BEGIN|END) SOLUTION\b.*$")
DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_DIFFICULTY = "medium"
HIDDEN_TAG = "remove-cell"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class ExerciseFormatError(ValueError):
    """A chapter notebook's exercises do not follow the format; the message names notebook and cell."""


@dataclass
class Exercise:
    number: int
    title: str
    prompt: int  # cell index of the prompt (markdown)
    solution: int  # cell index of the solution (code)
    check: int  # cell index of the check (code)
    points: float = 1
    difficulty: str = DEFAULT_DIFFICULTY
    extra: list[int] = field(default_factory=list)  # cells between prompt and solution

    @property
    def name(self) -> str:
        return f"exercise_{self.number:02d}"


# --------------------------------------------------------------------------------------------- parsing
def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_colab_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and "google.colab" in _src(cell)


def is_hidden(cell: dict) -> bool:
    return HIDDEN_TAG in _tags(cell) and not is_colab_cell(cell)


def has_solution(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and any(
        line.strip() == BEGIN for line in _src(cell).splitlines())


def _where(path, i: int) -> str:
    return f"{path}: cell {i}"


def check_markers(source: str, where: str) -> None:
    """Raise unless every BEGIN SOLUTION has its END SOLUTION, unnested, with the book's three hashes."""
    open_line = None
    for n, line in enumerate(source.splitlines(), start=1):
        m = MARKER_RE.match(line)
        if not m:
            if "# SOLUTION" in line or "#SOLUTION" in line:
                raise ExerciseFormatError(f"{where}: line {n} contains '# SOLUTION', which otter would "
                                          "rewrite; reword the comment")
            continue
        if not line.strip().startswith("### "):
            raise ExerciseFormatError(f"{where}: line {n}: write the marker as '{BEGIN}' / '{END}'")
        if m.group(2) == "BEGIN":
            if open_line is not None:
                raise ExerciseFormatError(f"{where}: line {n}: BEGIN SOLUTION inside the solution opened "
                                          f"at line {open_line} (unbalanced markers)")
            open_line = n
        else:
            if open_line is None:
                raise ExerciseFormatError(f"{where}: line {n}: END SOLUTION without BEGIN SOLUTION "
                                          "(unbalanced markers)")
            open_line = None
    if open_line is not None:
        raise ExerciseFormatError(f"{where}: line {open_line}: BEGIN SOLUTION without END SOLUTION "
                                  "(unbalanced markers)")


def parse_exercises(nb: dict, path="<notebook>") -> list[Exercise]:
    """Find the exercises of a chapter notebook; raise ExerciseFormatError naming notebook and cell."""
    cells = nb["cells"]
    for i, c in enumerate(cells):
        if c["cell_type"] == "code" and ("BEGIN SOLUTION" in _src(c) or "END SOLUTION" in _src(c)):
            check_markers(_src(c), _where(path, i))
    exercises: list[Exercise] = []
    prompts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and PROMPT_RE.search(_src(c))]
    solutions = [i for i, c in enumerate(cells) if has_solution(c)]
    for i in solutions:
        if is_hidden(cells[i]):
            raise ExerciseFormatError(f"{_where(path, i)}: a solution cell is tagged {HIDDEN_TAG}")
        if not any(p < i for p in prompts):
            raise ExerciseFormatError(f"{_where(path, i)}: solution cell without an '**Exercise N (title).**' "
                                      "prompt before it")
    bounds = prompts + [len(cells)]
    for k, p in enumerate(prompts):
        m = PROMPT_RE.search(_src(cells[p]))
        number, title = int(m.group(1)), m.group(2)
        stop = bounds[k + 1]
        sols = [i for i in solutions if p < i < stop]
        if not sols:
            raise ExerciseFormatError(f"{_where(path, p)}: Exercise {number} has no solution cell "
                                      f"('{BEGIN}' … '{END}') before the next exercise")
        if len(sols) > 1:
            raise ExerciseFormatError(f"{_where(path, sols[1])}: Exercise {number} has a second solution "
                                      "cell; put one solution cell per exercise")
        s = sols[0]
        extra = []
        for j in range(p + 1, s):
            c = cells[j]
            if c["cell_type"] == "code" and not is_hidden(c) and re.search(r"^\s*assert\b", _src(c), re.M):
                raise ExerciseFormatError(f"{_where(path, j)}: Exercise {number}'s check runs before its "
                                          f"solution cell {s}; move the check after the solution")
            extra.append(j)
        check = None
        for j in range(s + 1, stop):
            c = cells[j]
            if c["cell_type"] == "code":
                check = j
                break
        if check is None or is_hidden(cells[check]) or not re.search(r"^\s*assert\b", _src(cells[check]), re.M):
            where = _where(path, check if check is not None else s)
            raise ExerciseFormatError(f"{where}: Exercise {number} has no check: the code cell after its "
                                      f"solution cell {s} must be a visible cell with assert statements")
        meta = cells[s].get("metadata", {})
        points = meta.get("points", 1)
        difficulty = meta.get("difficulty", DEFAULT_DIFFICULTY)
        if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
            raise ExerciseFormatError(f"{_where(path, s)}: points must be a positive number, not {points!r}")
        if difficulty not in DIFFICULTIES:
            raise ExerciseFormatError(f"{_where(path, s)}: difficulty must be one of {DIFFICULTIES}, "
                                      f"not {difficulty!r}")
        exercises.append(Exercise(number, title, p, s, check, points, difficulty, extra))
    numbers = [e.number for e in exercises]
    if len(set(numbers)) != len(numbers):
        dup = next(e for e in exercises if numbers.count(e.number) > 1)
        raise ExerciseFormatError(f"{_where(path, dup.prompt)}: Exercise {dup.number} is numbered twice")
    return exercises


# ------------------------------------------------------------------------------------- master notebook
def _raw(text: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": text}


def _code(text: str, tags=()) -> dict:
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "metadata": meta, "source": text, "execution_count": None, "outputs": []}


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def to_otter_markers(source: str) -> str:
    """The book's ``### BEGIN SOLUTION`` lines become otter's ``# BEGIN SOLUTION`` (indent kept)."""
    out = []
    for line in source.splitlines():
        m = MARKER_RE.match(line)
        out.append(f"{m.group(1)}# {m.group(2)} SOLUTION" if m else line)
    return "\n".join(out)


def check_as_test(name: str, source: str) -> str:
    """An exception-based otter test that runs the book's check cell in the notebook's namespace.

    Running it in the notebook's globals keeps the book's semantics (a check may define helpers that
    later cells use) and lets the check's own assert messages reach the student.
    """
    return (f"def test_{name}(env):\n"
            f"    exec(compile({source!r}, {name + ' check'!r}, 'exec'), env)\n"
            f"\n"
            f"test_{name}(globals())")


def stub_source(source: str) -> str:
    """What a student sees: each solution region replaced by ``...`` (otter's own rule)."""
    from otter.assign.solutions import replace_solutions

    return "\n".join(replace_solutions(to_otter_markers(source).split("\n"), "python"))


def colab_student_source(source: str) -> str:
    """The Colab cell, also installing otter-grader (the student's ``grader.check`` needs it)."""
    new = source.replace('"install", "-q", ', '"install", "-q", "otter-grader", ', 1)
    if new == source:
        raise ExerciseFormatError("the Colab cell has changed shape: teach colab_student_source to add "
                                  "otter-grader to its pip install")
    return new


def dlcore_requirement(nb: dict) -> str:
    """The pip requirement for dlcore that the notebook's Colab cell installs (the grader installs the same)."""
    for c in nb["cells"]:
        if is_colab_cell(c):
            m = re.search(r"dlcore @ git\+[^\s\"']+", _src(c))
            if m:
                return m.group(0)
    url, branch = _repo()
    return f"dlcore @ git+{url}@{branch}"


def points_line(ex: Exercise) -> str:
    pts = f"{ex.points:g} point" + ("" if ex.points == 1 else "s")
    return f"*{pts} · {ex.difficulty}*"


def init_source(stem: str) -> str:
    """The student notebook's second code cell: otter's grader, reading this notebook's own tests folder."""
    return f'import otter\n\ngrader = otter.Notebook("{stem}.ipynb", tests_dir="tests/{stem}")'


def solutions_notebook(nb: dict, exercises: list[Exercise]) -> dict:
    """The instructor's copy: the chapter notebook without its hidden cells, worked solutions and checks in
    place (no otter needed to run it), each prompt ending with its points and difficulty."""
    prompts = {e.prompt: e for e in exercises}
    cells = []
    for i, c in enumerate(nb["cells"]):
        if is_hidden(c):
            continue
        c = copy.deepcopy(c)
        c["metadata"] = {}
        if i in prompts:
            c["source"] = _src(c).rstrip() + "\n\n" + points_line(prompts[i])
        cells.append(c)
    return {**copy.deepcopy(nb), "cells": cells}


def master_notebook(nb: dict, path, exercises: list[Exercise] | None = None) -> dict:
    """Otter's master notebook for one chapter notebook (hidden cells dropped, exercises as questions)."""
    if exercises is None:
        exercises = parse_exercises(nb, path)
    stem = Path(path).stem
    cells = nb["cells"]
    config = {
        "name": stem,
        "init_cell": False,  # our own init cell goes after the Colab cell
        "check_all_cell": False,
        "export_cell": False,
        "run_tests": False,  # `check` executes the notebooks itself, once, with stubs and solutions
        "generate": {"pdf": False, "filtering": False},
        # tests as files (tests/<notebook>/exercise_NN.py next to the student notebook): otter reads tests
        # from notebook metadata only outside Colab, and on Colab it needs the folder anyway
        "tests": {"files": True, "ok_format": False},
        "show_question_points": False,  # the prompt states points and difficulty itself
        "requirements": "requirements.txt",  # the grading image installs dlcore (and torch) from it
        "suppress_no_tests_warning": True,
    }
    import yaml

    out = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False).strip())]
    by_prompt = {e.prompt: e for e in exercises}
    skip: set[int] = set()
    init_done = False
    for i, c in enumerate(cells):
        if i in skip:
            continue
        if is_colab_cell(c):
            out.append(_code(colab_student_source(_src(c))))
            out.append(_code(init_source(stem)))
            init_done = True
            continue
        if is_hidden(c):
            continue
        if i in by_prompt:
            e = by_prompt[i]
            out.append(_raw(f"# BEGIN QUESTION\nname: {e.name}\npoints: {e.points:g}"))
            out.append(_md(_src(c).rstrip() + "\n\n" + points_line(e)))
            for j in e.extra:
                if not is_hidden(cells[j]):
                    out.append(copy.deepcopy(cells[j]))
            out.append(_raw("# BEGIN SOLUTION"))
            out.append(_code(to_otter_markers(_src(cells[e.solution]))))
            out.append(_raw("# END SOLUTION"))
            out.append(_raw("# BEGIN TESTS"))
            out.append(_code(check_as_test(e.name, _src(cells[e.check]))))
            out.append(_raw("# END TESTS"))
            out.append(_raw("# END QUESTION"))
            skip.update(e.extra + [e.solution, e.check])
            continue
        new = copy.deepcopy(c)
        if new["cell_type"] == "code":
            new["outputs"], new["execution_count"] = [], None
        new.get("metadata", {}).pop("tags", None)
        out.append(new)
    if not init_done:
        out.insert(1, _code(init_source(stem)))
    for c in out:
        c.pop("id", None)
    return {"cells": out, "metadata": copy.deepcopy(nb.get("metadata", {})), "nbformat": 4,
            "nbformat_minor": 4}


# --------------------------------------------------------------------------------------------- build
def all_notebooks() -> list[Path]:
    """The chapter notebooks of the book, as listed in _toc.yml (stray files in chapters/ are not the book)."""
    from notebooks import toc_notebooks

    return sorted(p for p in toc_notebooks() if p.relative_to(ROOT).parts[0] == "chapters")


def _load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _repo() -> tuple[str, str]:
    from notebooks import repo_url

    return repo_url()


def assign_one(path: str, out: str) -> dict:
    """Run ``otter assign`` on one chapter notebook; arrange its output under ``out/<chapter>/``."""
    from otter.assign import main as assign  # imported here: workers pay the import once each

    path, out = Path(path), Path(out)
    nb = _load(path)
    exercises = parse_exercises(nb, path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    chapter, stem = path.parent.name, path.stem
    dest = out / chapter
    with tempfile.TemporaryDirectory(prefix=f"assign-{stem}-") as tmp:
        tmp = Path(tmp)
        master = tmp / "master" / f"{stem}.ipynb"
        _write(master, master_notebook(nb, path, exercises))
        # the grading image: dlcore as the Colab cell installs it, torch's small CPU build (grading needs no GPU)
        (master.parent / "requirements.txt").write_text(
            f"--extra-index-url {TORCH_CPU_INDEX}\n{dlcore_requirement(nb)}\n", encoding="utf-8")
        logging.getLogger("otter").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()) as log:
            try:
                assign(str(master), str(tmp / "dist"), no_pdfs=True, no_run_tests=True)
            except Exception as exc:  # pragma: no cover - otter's own errors, reported with the notebook
                raise RuntimeError(f"{path}: otter assign failed: {exc}\n{log.getvalue()}") from exc
        (dest / "student").mkdir(parents=True, exist_ok=True)
        (dest / "autograder").mkdir(parents=True, exist_ok=True)
        (dest / "solutions").mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "dist" / "student" / f"{stem}.ipynb", dest / "student" / f"{stem}.ipynb")
        shutil.copytree(tmp / "dist" / "student" / "tests", dest / "student" / "tests" / stem)
        zips = sorted((tmp / "dist" / "autograder").glob("*.zip"))
        shutil.copy(zips[-1], dest / "autograder" / f"{stem}.zip")
    solutions = solutions_notebook(nb, exercises)
    # otter's assignment name, so that the solutions notebook can be submitted to the autograder as a test
    solutions["metadata"]["otter"] = _load(dest / "student" / f"{stem}.ipynb")["metadata"].get("otter", {})
    _write(dest / "solutions" / f"{stem}.ipynb", solutions)
    label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path("chapters") / chapter / path.name
    return {"notebook": str(label),
            "chapter": chapter,
            "exercises": [{"name": e.name, "number": e.number, "title": e.title, "points": e.points,
                           "difficulty": e.difficulty} for e in exercises]}


def build(paths: list[Path], out: Path = OUT, jobs: int = 2, fresh: bool = False) -> list[dict]:
    """Generate assignments for ``paths`` into ``out``.

    ``fresh=True`` (a build of the whole book) first empties each chapter's folder, so the kits of renamed
    or deleted notebooks go; otherwise only the outputs of ``paths`` are replaced, and the other notebooks'
    kits and manifest entries are kept.
    """
    for p in paths:  # fail fast, naming notebook and cell, before any otter run
        parse_exercises(_load(p), p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    for p in paths:
        dest = out / p.parent.name
        if fresh:
            shutil.rmtree(dest, ignore_errors=True)
            continue
        for old in (dest / "student" / f"{p.stem}.ipynb", dest / "autograder" / f"{p.stem}.zip",
                    dest / "solutions" / f"{p.stem}.ipynb"):
            old.unlink(missing_ok=True)
        shutil.rmtree(dest / "student" / "tests" / p.stem, ignore_errors=True)
    if jobs > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(assign_one, [str(p) for p in paths], [str(out)] * len(paths)))
    else:
        results = [assign_one(str(p), str(out)) for p in paths]
    by_chapter: dict[str, list[dict]] = {}
    for r in results:
        by_chapter.setdefault(r["chapter"], []).append(r)
    for chapter, items in by_chapter.items():
        manifest = out / chapter / "exercises.json"
        new = {r["notebook"] for r in items}
        kept = [r for r in json.loads(manifest.read_text(encoding="utf-8")) if r["notebook"] not in new] \
            if manifest.exists() and not fresh else []
        merged = sorted(kept + items, key=lambda r: r["notebook"])
        manifest.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    return results


# --------------------------------------------------------------------------------------------- check
PROBE = r'''
import json as __json
__probe_results = {}
def __probe(__key, __source):
    try:
        exec(compile(__source, __key, "exec"), globals())
        __probe_results[__key] = None
    except Exception as __e:  # a stub may raise anything
        __probe_results[__key] = f"{type(__e).__name__}: {__e}"[:300]
def __grade(__key, __question):
    import contextlib as __cl, io as __io
    with __cl.redirect_stdout(__io.StringIO()):
        __r = grader.check(__question)
    __msg = "; ".join(tr.message.splitlines()[-1] for tr in __r.test_case_results if not tr.passed)
    __probe_results[__key] = [__r.score, __r.possible, __msg[:300]]
'''


def probe_notebook(student: dict, chapter_nb: dict, exercises: list[Exercise]) -> dict:
    # One notebook that runs the student version top to bottom and, at each exercise, runs the stub
    # and grades it with otter's grader.check, then runs the worked solution and grades it again.
    solutions = {e.name: _src(chapter_nb["cells"][e.solution]) for e in exercises}
    stu = student["cells"]

    def question(k):
        m = stu[k]["cell_type"] == "code" and re.fullmatch(r'grader\.check\("(\w+)"\)', _src(stu[k]).strip())
        return m.group(1) if m else None

    answer_cells = {k - 1 for k in range(1, len(stu)) if question(k)}
    graded = [question(k + 1) for k in sorted(answer_cells)]
    if graded != list(solutions):
        raise ExerciseFormatError(f"the student notebook grades {graded} but the chapter notebook has "
                                  f"{list(solutions)}: it is out of date, run the build again")
    cells = [_code(PROBE)]
    for k, c in enumerate(stu):
        q = question(k)
        if k in answer_cells:
            continue  # the stub: run below, under the probe
        if not q:
            cells.append(copy.deepcopy(c))
            continue
        if q not in solutions or stu[k - 1]["cell_type"] != "code":
            raise ExerciseFormatError(f"student notebook: cell {k}: no answer cell or solution for {q}")
        cells.append(_code(f"__probe({q + ':stub'!r}, {_src(stu[k - 1])!r})\n"
                           f"__grade({q + ':stub-grade'!r}, {q!r})"))
        cells.append(_code(f"__probe({q + ':solution'!r}, {solutions[q]!r})\n"
                           f"__grade({q + ':solution-grade'!r}, {q!r})"))
    # otter run grades after the whole notebook has run: every solution must still score full marks then
    cells.append(_code("\n".join(f"__grade({q + ':final-grade'!r}, {q!r})" for q in solutions)))
    cells.append(_code('print("@@PROBE@@" + __json.dumps(__probe_results))'))
    for c in cells:
        c["source"] = _src(c)
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
        c.pop("id", None)
    nb = copy.deepcopy(student)
    nb["cells"] = cells
    return nb


def check_one(student_path: str, chapter_path: str, timeout: int = 600) -> dict:
    """Execute the probe notebook in a kernel; per exercise: the stub's grade, the solution's grade."""
    import nbformat
    from nbclient import NotebookClient

    student_path, chapter_path = Path(student_path), Path(chapter_path)
    chapter_nb = _load(chapter_path)
    exercises = parse_exercises(chapter_nb, chapter_path)
    names = [e.name for e in exercises]
    nb = probe_notebook(_load(student_path), chapter_nb, exercises)
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
        work = Path(tmp) / student_path.stem
        work.mkdir()
        # grader.check reads tests/<notebook>/ next to the notebook, as a student's copy does
        shutil.copy(student_path, work / student_path.name)
        shutil.copytree(student_path.parent / "tests" / student_path.stem, work / "tests" / student_path.stem)
        node = nbformat.from_dict(nb)
        os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
        from kernel_lock import kernel_start_lock

        with kernel_start_lock() as release:  # two workers must not race for a kernel's ports
            NotebookClient(node, timeout=timeout, kernel_name="python3", on_notebook_start=release,
                           resources={"metadata": {"path": str(work)}}).execute()
    text = "".join(o.get("text", "") for o in node.cells[-1].outputs if o.get("output_type") == "stream")
    results = json.loads(text.split("@@PROBE@@", 1)[1])
    out = {}
    for q in names:
        out[q] = {
            "stub_error": results.get(f"{q}:stub"),  # the stub cell itself (may fail: that is fine)
            "stub_grade": results.get(f"{q}:stub-grade"),  # [grade, possible, message]
            "solution_error": results.get(f"{q}:solution"),  # the worked solution cell (must run)
            "solution_grade": results.get(f"{q}:solution-grade"),
            "final_grade": results.get(f"{q}:final-grade"),  # graded at the end, as otter run does
        }
    return out


def verdicts(results: dict) -> list[str]:
    """Problems found by ``check_one``: weak checks, failing solutions, wrong grades."""
    bad = []
    for q, r in results.items():
        if "error" in r:
            bad.append(f"{q}: did not run to the end: {r['error']}")
            continue
        stub, sol = r["stub_grade"], r["solution_grade"]
        if stub is None or stub[0] != 0:
            bad.append(f"{q}: WEAK CHECK: the stub scores {stub and stub[0]} of {stub and stub[1]}, not zero")
        if r["solution_error"] is not None:
            bad.append(f"{q}: the worked solution cell fails: {r['solution_error']}")
        if sol is None or sol[0] != sol[1]:
            bad.append(f"{q}: the solution scores {sol and sol[0]} of {sol and sol[1]}: {sol and sol[2]}")
        elif r.get("final_grade") is None or r["final_grade"][0] != r["final_grade"][1]:
            fin = r.get("final_grade")
            bad.append(f"{q}: graded after the whole notebook (as otter run does), the solution scores "
                       f"{fin and fin[0]} of {fin and fin[1]}: {fin and fin[2]} (a later cell redefines a name "
                       "its check uses)")
    return bad


def rotating_sample(paths: list[Path], k: int) -> list[Path]:
    """A sample of ``k`` notebooks that changes with the commit (hash of HEAD), so that over a series of
    commits every notebook is checked; deterministic for one commit."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = time.strftime("%Y-%m-%d")
    ranked = sorted(paths, key=lambda p: hashlib.sha256(f"{head}:{p.name}".encode()).hexdigest())
    return sorted(ranked[:k])


def _check_pair(args):
    student, chapter = args
    t0 = time.perf_counter()
    try:
        results = check_one(student, chapter)
    except Exception as exc:  # a cell outside the exercises failed or timed out: report it, check the rest
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        results = {"notebook": {"error": f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]}}
    print(f"     executed {Path(chapter).name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return student, results


def check(paths: list[Path], out: Path = OUT, jobs: int = 2) -> dict[str, dict]:
    """Build then prove the assignments of ``paths`` (stub fails, solution passes, grades 0 / full).

    Works on a snapshot of the notebooks, so that an edit made meanwhile cannot pair a student notebook
    with a different version of its chapter notebook."""
    for p in paths:
        parse_exercises(_load(p), p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    with tempfile.TemporaryDirectory(prefix="assignments-snapshot-") as tmp:
        snaps = []
        for p in paths:
            snap = Path(tmp) / p.parent.name / p.name
            snap.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, snap)
            snaps.append(snap)
        build(snaps, out, jobs=jobs)
        pairs = [(str(out / s.parent.name / "student" / s.name), str(s)) for s in snaps]
        if jobs > 1 and len(pairs) > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                done = dict(pool.map(_check_pair, pairs))
        else:
            done = dict(map(_check_pair, pairs))
    return {str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p): done[stu]
            for p, (stu, _) in zip(paths, pairs)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["build", "check"])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--sample", type=int, default=0, help="check: a rotating sample of K notebooks")
    ap.add_argument("--report", type=Path, help="check: also write the per-exercise results as JSON here")
    args = ap.parse_intermixed_args(argv)
    paths = [p.resolve() for p in args.notebooks] or all_notebooks()
    t0 = time.perf_counter()
    try:
        if args.cmd == "build":
            results = build(paths, args.out, jobs=args.jobs, fresh=not args.notebooks)
            n = sum(len(r["exercises"]) for r in results)
            print(f"wrote {n} exercises from {len(results)} notebooks to {args.out} "
                  f"in {time.perf_counter() - t0:.1f} s")
            return 0
        if args.sample:
            paths = rotating_sample(paths, args.sample)
        report = check(paths, args.out, jobs=args.jobs)
        if args.report:
            args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    except ExerciseFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for nb, results in report.items():
        problems = verdicts(results)
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {nb}: {len(results)} exercises")
        for p in problems:
            print(f"     {p}")
    print(f"checked {len(report)} notebooks in {time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
