"""Timing code fairly: warm up, repeat, and summarise with the minimum or the median.

A single ``perf_counter`` difference measures the code *and* whatever else the machine was doing. Two
summaries of repeated runs are robust to that noise: the **minimum** (the run that was disturbed least;
right for short, deterministic computations) and the **median** (right when runs genuinely vary, such as
training steps). Both first run the function ``warmup`` times, so one-off costs (allocations, lazy
initialisation, caches) are not counted.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def _times(fn: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Fastest of ``repeats`` calls of ``fn()``, in seconds."""
    return min(_times(fn, repeats, warmup))


def median_time(fn: Callable[[], object], repeats: int = 15, warmup: int = 3) -> float:
    """Median of ``repeats`` calls of ``fn()``, in seconds."""
    return statistics.median(_times(fn, repeats, warmup))
