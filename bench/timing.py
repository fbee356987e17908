"""Timing helper shared by the benchmarks."""
from __future__ import annotations

import time

import numpy as np


def median_ms(fn, reps: int) -> float:
    """Median wall time of ``fn()`` in ms over ``reps`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))
