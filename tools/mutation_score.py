"""Print the mutation score per module from mutmut's results (run after `mutmut run`; used by `make mutation`).

mutmut 3 keeps one ``mutants/<path>.meta`` JSON file per mutated source file; its ``exit_code_by_key`` maps
each mutant to the exit code of the test run against it (mutmut's own table, see ``mutmut.stats``): 1 or 3
means a test failed (killed), 0 that every test passed (survived), None that it was not run. A timeout also
counts as killed: the tests noticed the change. The score is killed / (total - not checked).

    python tools/mutation_score.py [mutants_dir]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3}
TIMEOUT = {24, -24, 152, 255, 36}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 37: "caught by type check",
          None: "not checked", -11: "segfault", -9: "segfault"}


def status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    return STATUS.get(code, "suspicious")


def scores(mutants: Path) -> dict[str, Counter]:
    """``{module: Counter(status -> count)}`` for every ``*.py.meta`` file under ``mutants``."""
    out: dict[str, Counter] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = meta.relative_to(mutants).as_posix()[: -len(".py.meta")].replace("/", ".")
        out[module] = Counter(status(c) for c in codes.values())
    return out


def main(argv: list[str]) -> int:
    mutants = Path(argv[0]) if argv else Path("mutants")
    table = scores(mutants)
    if not table:
        print(f"no mutmut results under {mutants}/: run `mutmut run` first", file=sys.stderr)
        return 1
    print(f"{'module':<22} {'killed':>7} {'checked':>8} {'score':>7}  other")
    for module, c in table.items():
        checked = sum(c.values()) - c["not checked"]
        killed = c["killed"] + c["timeout"]
        other = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("killed", "timeout") and v)
        score = f"{100 * killed / checked:.1f} %" if checked else "-"
        print(f"{module:<22} {killed:>7} {checked:>8} {score:>7}  {other}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
