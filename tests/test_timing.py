import time

import pytest

from dlcore import timing


def test_best_time_is_the_minimum_and_skips_warmup():
    calls = []

    def slow_first():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    t = timing.best_time(slow_first, repeats=3, warmup=1)
    assert len(calls) == 4 and t < 0.03


def test_median_time_is_robust_to_one_outlier():
    delays = iter([0.0, 0.001, 0.08, 0.001, 0.001])
    t = timing.median_time(lambda: time.sleep(next(delays)), repeats=4, warmup=1)
    assert t < 0.03


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}])
def test_bad_repeat_counts_are_rejected(kwargs):
    with pytest.raises(ValueError, match="repeats >= 1"):
        timing.best_time(lambda: None, **kwargs)
