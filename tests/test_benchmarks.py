"""The benchmark scripts still run (they are not timed here: their figures depend on the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpt_benchmark_prints_tokens_per_second_mfu_and_validation_loss():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "benchmarks/gpt.py", "--profile", "cpu", "--steps", "2", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["profile"] == "cpu" and row["steps"] == 2
    assert row["tokens_per_s"] > 0 and 0 < row["mfu"] and row["peak_tflops"] > 0
    assert 0 < row["val_loss"] < 10 and row["params"] > 0
