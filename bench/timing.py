"""Timing helpers shared by the benchmarks: a median timer, and timings in a fresh process on one
thread, of this checkout or of ``rtser/`` as it was at an earlier commit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Run first in every timed process: one thread for numpy's BLAS too; argv[1] is the input file.
PRELUDE = """
import json, resource, sys, time
from threadpoolctl import threadpool_limits
threadpool_limits(1)
path = sys.argv[1]
"""
# ... and last: the seconds of work it timed (``wall``) and its peak RSS.
REPORT = """
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss /
1024}))
"""


def median_ms(fn, reps: int) -> float:
    """Median wall time of ``fn()`` in ms over ``reps`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def runtime_at(commit: str, into: Path) -> Path:
    """``rtser/`` as it was at ``commit`` (bundle included), extracted from git into ``into``."""
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "rtser"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def timed(code: str, path: Path, pythonpath: Path = ROOT) -> dict:
    """Run ``code`` (which sets ``wall``) in a fresh process that imports from ``pythonpath``:
    ``{"wall": seconds, "rss_mb": peak}``."""
    r = subprocess.run(
        [sys.executable, "-c", PRELUDE + code + REPORT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=pythonpath,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(r.stdout.strip().splitlines()[-1])
