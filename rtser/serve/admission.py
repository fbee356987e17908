"""Admission by measured capacity: a box takes the calls it can carry within a latency budget and
refuses the rest, instead of letting every call fall behind together.

The pool's recent work says what a call costs here: compute seconds per second of call audio
(its real-time factor, which moves with the machine, the day and the calls). With ``workers``
threads kept ``UTILISATION`` busy, the box carries ``workers * UTILISATION / rtf`` calls. A new call
is refused while that many are active, and while any admitted call is behind: its backlog over the
budget, or the recent lag from audio arriving to its events over half of it."""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

import numpy as np

LATENCY_BUDGET_S = 1.0  # p95 from audio arriving to its events going out
# The share of the workers' time the admitted calls may take. At 0.8, bench/serve.py admitted 49-52
# continuous-speech calls at 2-3x the estimate, on the knee where p95 went from 0.8 to 2.5 s;
# at 0.75 it admits 46-47 (p95 under 0.6 s): over 85 % of the 49-51 it carried within 1 s.
UTILISATION = 0.75
# Before anything is measured (a fresh box, a burst of calls in its first second): this many calls
# per worker, well under what a worker carried in bench/serve.py, until the first pushes tell.
UNMEASURED_CALLS_PER_WORKER = 8
WINDOW_S = 30.0  # how far back the cost of a call is measured ...
LAG_WINDOW_S = 5.0  # ... and the lag: a box falling behind must stop admitting at once
HEADROOM = 0.5  # admit while the recent lag stays under this share of the budget: a call just
# admitted adds its load over its first seconds (measured: bench/serve.py at 2x its capacity)


class Push(NamedTuple):
    at: float  # time.monotonic() when it finished
    compute_s: float
    audio_s: float  # seconds of call audio it covered
    lag_s: float  # from the audio's arrival to its events


class Load:
    """The pool's recent pushes, and what they say about admitting another call."""

    def __init__(self, workers: int, budget_s: float = LATENCY_BUDGET_S):
        self.workers, self.budget = workers, budget_s
        self.pushes: deque[Push] = deque()

    def record(self, compute_s: float, audio_s: float, lag_s: float) -> None:
        now = time.monotonic()
        self.pushes.append(Push(now, compute_s, audio_s, lag_s))
        while self.pushes and self.pushes[0].at < now - WINDOW_S:
            self.pushes.popleft()

    def rtf(self) -> float | None:
        """Compute seconds per second of call audio, lately (None before any push)."""
        audio = sum(p.audio_s for p in self.pushes)
        return sum(p.compute_s for p in self.pushes) / audio if audio > 0 else None

    def lag_p95(self) -> float:
        """From audio arriving to its events, p95 over the last ``LAG_WINDOW_S``."""
        recent = [p.lag_s for p in self.pushes if p.at >= time.monotonic() - LAG_WINDOW_S]
        return float(np.percentile(recent, 95)) if recent else 0.0

    def capacity(self) -> int | None:
        """Calls this box carries within its workers' time (None before it has measured)."""
        rtf = self.rtf()
        return None if not rtf else max(1, int(self.workers * UTILISATION / rtf))

    def refusal(self, active: int, backlog_s: float) -> str | None:
        """Why a new call must wait (None: admit it): ``active`` calls, the largest backlog of
        audio (seconds) an admitted call holds."""
        if backlog_s > self.budget:
            return f"behind: a call waits on {backlog_s:.1f} s of audio"
        if self.lag_p95() > HEADROOM * self.budget:
            return f"behind: events come {self.lag_p95():.2f} s after their audio (p95)"
        capacity = self.capacity()
        if capacity is None and active >= self.workers * UNMEASURED_CALLS_PER_WORKER:
            return f"not measured yet: {active} calls are as many as a fresh box takes"
        if capacity is not None and active >= capacity:
            return f"at capacity ({capacity} calls measured)"
        return None
