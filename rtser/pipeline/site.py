"""A site's running baseline: how far what a head hears on average over a site's calls lies from
what it hears in strangers' mostly neutral speech.

A head trained on acted corpora hears a new site (its lines, its language, its callers) with an
offset. Its log-probabilities all lean one way, and it calls calm callers sad or angry. A site's
calls are mostly calm, so the mean over many of them, set against the calibration's ``reference``
(the same head's mean over strangers' mostly neutral speech), measures that offset, and the site's
later calls are labelled with it taken out (``bench/strangers.py`` measures this against each
caller's own baseline). One caller's own baseline is not used: a caller who stays angry throughout
would be read as neutral.

The baseline learns from a call's final turns when the call ends, and it stays fixed while a call
runs. So a call's events depend only on its audio and on what the site heard before the call.

>>> site = Site("site.json")            # read at start, written after every call
>>> rec = Recognizer("en", site=site)
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import RtserError
from .calibration import Calibration

# The offset is trusted n / (n + 10) after n turns, so that a new site's first call does not
# count fully (bench/strangers.py measures sites after 10 and 30 turns, and after many calls).
PRIOR_TURNS = 10


class SiteBaseline:
    """One language's baseline at a site: the sum of the calibrated log-probabilities of the
    ``turns`` it learnt from, set against ``calibration.reference``."""

    def __init__(self, site: Site, lang: str, calibration: Calibration):
        self.site, self.lang = site, lang
        self.labels, self.reference = calibration.labels, calibration.reference
        self.turns, self.total = 0, np.zeros(len(self.labels))

    def offset(self) -> np.ndarray:
        """What to take from calibrated log-probabilities (zeros until the site has spoken)."""
        with self.site.lock:
            if not self.turns:
                return np.zeros(len(self.labels))
            mean = self.total / self.turns
            return (mean - mean.mean() - self.reference) * self.turns / (self.turns + PRIOR_TURNS)

    def add(self, log_probs: np.ndarray) -> None:
        """Learn from a call's final turns: their calibrated log-probabilities before any offset,
        ``(turns, labels)``."""
        rows = np.asarray(log_probs, np.float64).reshape(-1, len(self.labels))
        rows = rows[np.all(np.isfinite(rows), axis=1)]
        if not len(rows):
            return
        with self.site.lock:
            self.turns += len(rows)
            self.total += rows.sum(axis=0)
        self.site.save()

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "reference": self.reference.round(6).tolist(),
            "turns": self.turns,
            "total": self.total.round(6).tolist(),
        }


def restore(baseline: SiteBaseline, stored) -> None:
    """Take ``stored``'s turns when it was written for the same head and reference."""
    try:
        reference = np.asarray(stored["reference"], np.float64)
        total = np.asarray(stored["total"], np.float64)
        turns = stored["turns"]
    except (TypeError, KeyError, ValueError):
        return
    if (
        stored.get("labels") == list(baseline.labels)
        and reference.shape == total.shape == baseline.reference.shape
        and np.allclose(reference, baseline.reference, atol=1e-5)
        and np.all(np.isfinite(total))
        and isinstance(turns, int)
        and turns >= 0
    ):
        baseline.turns, baseline.total = turns, total


class Site:
    """The baselines of a site's languages, kept in ``path`` (a JSON file, read when it exists and
    written after every call) or in memory (None). A language whose head has no reference, or
    whose bundle changed since the file was written, starts from nothing."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.lock = threading.RLock()
        self.baselines: dict[str, SiteBaseline] = {}
        self.stored: dict = {}
        if self.path is not None and self.path.exists():
            try:
                self.stored = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.stored = None
            if not isinstance(self.stored, dict):
                raise RtserError(
                    f"{self.path} is not a site baseline rtser wrote; give another file, or "
                    "delete it to start the site afresh"
                )
        try:  # fail now, not after a call
            self.write()
        except OSError as error:
            raise RtserError(
                f"cannot write the site baseline {self.path}: {error.strerror}; pick a writable "
                "file"
            ) from None

    def baseline(self, lang: str, calibration: Calibration) -> SiteBaseline | None:
        """``lang``'s baseline (None when its head has no reference to hold a site to)."""
        if calibration.reference is None:
            return None
        with self.lock:
            if lang not in self.baselines:
                baseline = SiteBaseline(self, lang, calibration)
                restore(baseline, self.stored.get(lang))
                self.baselines[lang] = baseline
            return self.baselines[lang]

    def save(self) -> None:
        """Write every language's baseline to ``path`` (atomically: a crash keeps the old one).
        A failure is a warning: the labels stand, only the site's memory of them is lost."""
        try:
            self.write()
        except OSError as error:
            warnings.warn(
                f"cannot write the site baseline {self.path}: {error.strerror}", stacklevel=2
            )

    def write(self) -> None:
        if self.path is None:
            return
        with self.lock:
            data = {**self.stored, **{k: b.to_dict() for k, b in self.baselines.items()}}
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self.path)
