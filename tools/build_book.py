"""Build the HTML book: execute the notebooks in parallel into the cache, then run Jupyter Book.

Jupyter Book (myst-nb, ``execute_notebooks: cache``) executes notebooks one after another. This script
first fills the same jupyter-cache (``_build/.jupyter_cache``) with several notebooks at a time, exactly as
myst-nb would (same reader, same working directory, same cache record), so the build itself only reads
outputs from the cache. A notebook whose code did not change is not executed again, unless the dlcore
sources changed (then every notebook runs again, since outputs depend on the library too).

    python tools/build_book.py [--jobs N] [--strict]

``--strict`` is the test mode: any failing notebook or any Sphinx warning (``-W -n --keep-going``) fails
the run. The per-notebook execution times are printed at the end (and written to
``_build/notebook_times.json``).

Two things keep the static pages clean. Progress bars (tqdm in a notebook is a live widget) are removed
from each executed notebook before it is cached (:func:`strip_progress_bars`): in a page they are dead boxes,
empty once the bar closed (``leave=False``), and ``TQDM_DISABLE`` cannot help because ``tqdm.notebook``
ignores it. And the widget manager's fonts, which it requests relative to each page
(``@jupyter-widgets/html-manager/dist/*.woff2``), are copied next to every page that shows widgets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
CACHE = ROOT / "_build" / ".jupyter_cache"
TIMEOUT = 300  # seconds per cell, as in _config.yml
# How executed notebooks are post-processed; part of the cache fingerprint, so a change re-executes everything.
POSTPROCESS = "strip_progress_bars v1"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_MODELS = {"FloatProgressModel", "IntProgressModel"}
WIDGET_FONTS = ROOT / "book" / "_vendor" / "widgets"
FONT_DIR = Path("@jupyter-widgets") / "html-manager" / "dist"  # where embed-amd.js looks, relative to the page


def toc_notebooks() -> list[Path]:
    """Notebooks listed in _toc.yml, in reading order."""
    from notebooks import toc_notebooks as listed

    return listed()


def _execute(path: str) -> tuple[str, dict | None, float, str | None]:
    """Run one notebook in its own folder (worker process). Returns the executed notebook as a dict."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution
    from kernel_lock import kernel_start_lock

    nb = nbformat.read(path, as_version=4)
    try:
        with kernel_start_lock() as release:  # released as soon as the kernel is up: execution stays parallel
            result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=TIMEOUT, allow_errors=False,
                                         meta_override=True, on_notebook_start=release)
    except Exception as e:  # a kernel that failed to start: report it like a failed notebook
        return path, None, 0.0, f"{type(e).__name__}: {e}"
    if result.err is not None:
        return path, None, result.time, result.exc_string
    strip_progress_bars(nb)
    return path, nb, result.time, None


def _model_refs(value) -> list[str]:
    """Model ids a widget's state points to (``"IPY_MODEL_<id>"`` strings, possibly in lists or dicts)."""
    if isinstance(value, str):
        return [value[len("IPY_MODEL_"):]] if value.startswith("IPY_MODEL_") else []
    if isinstance(value, list):
        return [r for v in value for r in _model_refs(v)]
    if isinstance(value, dict):  # a nested widget output holds {"model_id": ...} without the prefix
        nested = [value["model_id"]] if isinstance(value.get("model_id"), str) else []
        return nested + [r for v in value.values() for r in _model_refs(v)]
    return []


def strip_progress_bars(nb) -> int:
    """Remove progress-bar widgets from an executed notebook; returns how many outputs were removed.

    A widget output is removed when its model is a progress bar, or a box holding one (tqdm's bar), or is
    missing from the saved widget state (a closed widget, which the page would show as an empty box). The
    saved state then keeps only the models the remaining outputs use, and disappears when none remain.
    """
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    state = widgets.get("state", {})

    def is_bar(model_id: str) -> bool:
        model = state.get(model_id)
        if model is None:
            return True
        children = _model_refs(model.get("state", {}).get("children", []))
        return any(state.get(m, {}).get("model_name") in PROGRESS_MODELS for m in [model_id, *children])

    removed, views = 0, []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is not None and is_bar(view.get("model_id")):
                removed += 1
                continue
            if view is not None:
                views.append(view["model_id"])
            outputs.append(out)
        cell["outputs"] = outputs
    if not state:
        return removed
    keep, todo = set(), list(views)
    while todo:  # every model reachable from a remaining output
        m = todo.pop()
        if m in keep or m not in state:
            continue
        keep.add(m)
        todo += _model_refs(state[m].get("state", {}))
    if keep:
        widgets["state"] = {k: v for k, v in state.items() if k in keep}
    else:
        del nb.metadata["widgets"][WIDGET_STATE]
        if not nb.metadata["widgets"]:
            del nb.metadata["widgets"]
    return removed


def dlcore_fingerprint() -> str:
    """Hash of the dlcore sources (and of POSTPROCESS): jupyter-cache keys on a notebook's code only, not on
    what it imports or how its outputs are processed."""
    h = hashlib.sha256(POSTPROCESS.encode())
    for f in sorted((ROOT / "dlcore").rglob("*.py")):
        h.update(str(f.relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()


def fill_cache(notebooks: list[Path], jobs: int) -> tuple[dict[str, float], dict[str, str]]:
    """Execute every notebook that has no valid cache record; returns (times, failures)."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    stamp, fingerprint = ROOT / "_build" / "dlcore.sha256", dlcore_fingerprint()
    if CACHE.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        print("dlcore changed since the last build: executing every notebook again", flush=True)
        shutil.rmtree(CACHE)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    cache = get_cache(str(CACHE))
    times: dict[str, float] = {}
    todo = []
    for p in notebooks:
        nb = nbformat.read(p, as_version=4)
        try:
            record = cache.match_cache_notebook(nb)
            times[str(p.relative_to(ROOT))] = float(record.data.get("execution_seconds") or 0.0)
        except KeyError:
            todo.append(p)
    print(f"notebooks: {len(notebooks)} in the book, {len(todo)} to execute with {jobs} worker(s)", flush=True)
    failures: dict[str, str] = {}
    if not todo:
        return times, failures
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, str(p)) for p in todo]
        for fut in as_completed(futures):
            path, nb_dict, seconds, tb = fut.result()
            rel = str(Path(path).relative_to(ROOT))
            times[rel] = seconds
            if tb is not None:
                failures[rel] = tb
                print(f"  FAILED {rel} ({seconds:.1f} s)", flush=True)
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(nbformat.from_dict(nb_dict), path, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            print(f"  ok     {rel} ({seconds:.1f} s)", flush=True)
    return times, failures


def serve_widget_fonts(html: Path) -> list[Path]:
    """Copy the widget manager's fonts next to every page that shows widgets; returns the folders."""
    fonts = sorted(WIDGET_FONTS.glob("*.woff2"))
    folders = sorted({page.parent / FONT_DIR for page in html.rglob("*.html")
                      if WIDGET_STATE in page.read_text(encoding="utf-8")})
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for f in fonts:
            shutil.copy2(f, folder / f.name)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--strict", action="store_true", help="fail on any notebook error or warning")
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per parallel notebook
    t0 = time.perf_counter()
    times, failures = fill_cache(toc_notebooks(), args.jobs)
    t_exec = time.perf_counter() - t0
    for rel, tb in failures.items():
        print(f"\n===== {rel} failed =====\n{tb}", file=sys.stderr)
    if failures and args.strict:
        print(f"{len(failures)} notebook(s) failed; not building.", file=sys.stderr)
        return 1

    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--path-output", str(ROOT)]
    if args.strict:
        cmd += ["-W", "-n", "--keep-going"]
    t1 = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    t_build = time.perf_counter() - t1
    serve_widget_fonts(ROOT / "_build" / "html")

    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "notebook_times.json").write_text(json.dumps(times, indent=1, sort_keys=True))
    print("\nPer-notebook execution time (s):")
    for rel, s in sorted(times.items()):
        print(f"  {s:7.1f}  {rel}")
    print(f"  {sum(times.values()):7.1f}  total notebook time")
    print(f"Executed in {t_exec:.0f} s, built in {t_build:.0f} s.")
    index = ROOT / "_build" / "html" / "index.html"
    if rc == 0 and not failures:
        print(f"The book is at {index}")
    return rc or (1 if failures else 0)


if __name__ == "__main__":
    sys.exit(main())
