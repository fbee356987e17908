"""Rolling label smoothing: exponential moving average of probabilities plus hysteresis."""

from __future__ import annotations

import numpy as np

from .calibration import Calibration


class LabelSmoother:
    """The shown label follows ``calibration.label`` of the smoothed probabilities, but changes
    only when the new label leads the shown one by ``margin``, or the shown one lost its evidence
    (it is not the neutral label and fell below the calibration's threshold)."""

    def __init__(self, calibration: Calibration, alpha: float = 0.5, margin: float = 0.15):
        self.calibration, self.alpha, self.margin = calibration, alpha, margin
        self.reset()

    def reset(self) -> None:
        self.probs: np.ndarray | None = None
        self.current: int | None = None

    def update(self, probs: np.ndarray) -> tuple[str, np.ndarray]:
        self.probs = (
            probs if self.probs is None else self.alpha * probs + (1 - self.alpha) * self.probs
        )
        labels = self.calibration.labels
        candidate = labels.index(self.calibration.label(self.probs))
        if self.current is None or self._switch(candidate):
            self.current = candidate
        return labels[self.current], self.probs

    def _switch(self, candidate: int) -> bool:
        p, current, cal = self.probs, self.current, self.calibration
        lost = cal.labels[current] != cal.neutral and p[current] < cal.threshold
        return candidate != current and (lost or p[candidate] - p[current] >= self.margin)
