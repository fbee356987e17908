"""The corpora in ../shared/data: manifests, label sets and speaker-independent folds."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtser.enroll import SEED, speaker_folds  # one fold rule for training and enrolment

__all__ = [
    "DATA",
    "CACHE",
    "SEED",
    "Clip",
    "corpora",
    "clips",
    "labels",
    "speaker_folds",
    "fold_indices",
    "POOLED",
]

DATA = Path(
    os.environ.get("RTSER_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
CACHE = Path(
    os.environ.get("RTSER_CACHE", Path.home() / ".cache" / "rtser")
)  # features, joined weights


# emospeech's pool of many unknown people: train only, never one speaker of a speaker-independent
# split (its SOURCE.txt: the pool may hold the voices of named speakers)
POOLED = "unknown"


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str  # "corpus:speaker"
    language: str
    corpus: str

    @property
    def pooled(self) -> bool:
        """Whether the clip's speaker is a pool of unknown people (``POOLED``)."""
        return self.speaker == f"{self.corpus}:{POOLED}"


def corpora(root: Path = DATA) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/manifest.csv"))


def clips(corpus: str, root: Path = DATA) -> list[Clip]:
    with open(root / corpus / "manifest.csv", newline="") as f:
        return [
            Clip(
                root / corpus / r["path"],
                r["label"],
                f"{corpus}:{r['speaker']}",
                r["language"],
                corpus,
            )
            for r in csv.DictReader(f)
        ]


def labels(items: list[Clip]) -> list[str]:
    return sorted({c.label for c in items})


def fold_indices(speakers: list[str], **kw) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index pairs; no speaker is ever on both sides."""
    spk = np.asarray(speakers)
    return [
        (np.flatnonzero(~np.isin(spk, test)), np.flatnonzero(np.isin(spk, test)))
        for test in speaker_folds(list(speakers), **kw)
    ]
