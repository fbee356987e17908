"""Rolling label smoothing: exponential moving average of probabilities plus hysteresis."""

from __future__ import annotations

import numpy as np


class LabelSmoother:
    """The shown label changes only when another label leads the current one by ``margin``."""

    def __init__(self, labels: list[str], alpha: float = 0.5, margin: float = 0.15):
        self.labels, self.alpha, self.margin = labels, alpha, margin
        self.reset()

    def reset(self) -> None:
        self.probs: np.ndarray | None = None
        self.current: int | None = None

    def update(self, probs: np.ndarray) -> tuple[str, np.ndarray]:
        self.probs = (
            probs if self.probs is None else self.alpha * probs + (1 - self.alpha) * self.probs
        )
        top = int(np.argmax(self.probs))
        if self.current is None or self.probs[top] - self.probs[self.current] >= self.margin:
            self.current = top
        return self.labels[self.current], self.probs
