"""Unweighted / weighted accuracy and confusion matrices."""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def ua(y_true, y_pred, n: int) -> float:
    """Unweighted accuracy: mean per-class recall over the classes present."""
    m = confusion(y_true, y_pred, n)
    present = m.sum(1) > 0
    return float(np.mean(np.diag(m)[present] / m.sum(1)[present]))


def wa(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
