"""The corpora in ../shared/data: manifests, label sets and speaker-independent folds."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("RTSER_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SEED = 12345


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str
    language: str
    corpus: str


def corpora(root: Path = DATA) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/manifest.csv"))


def clips(corpus: str, root: Path = DATA) -> list[Clip]:
    with open(root / corpus / "manifest.csv", newline="") as f:
        return [Clip(root / corpus / r["path"], r["label"], f"{corpus}:{r['speaker']}", r["language"], corpus)
                for r in csv.DictReader(f)]


def labels(items: list[Clip]) -> list[str]:
    return sorted({c.label for c in items})


def speaker_folds(speakers: list[str], max_loso: int = 10, n_groups: int = 5, seed: int = SEED) -> list[np.ndarray]:
    """Test-speaker sets: leave-one-speaker-out with up to ``max_loso`` speakers, otherwise
    ``n_groups`` speaker groups of similar size (shuffled with ``seed``)."""
    unique = sorted(set(speakers))
    if len(unique) <= max_loso:
        return [np.array([s]) for s in unique]
    order = np.random.default_rng(seed).permutation(unique)
    return [np.array(sorted(g)) for g in np.array_split(order, n_groups)]


def fold_indices(speakers: list[str], **kw) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index pairs; no speaker is ever on both sides."""
    spk = np.asarray(speakers)
    return [(np.flatnonzero(~np.isin(spk, test)), np.flatnonzero(np.isin(spk, test)))
            for test in speaker_folds(list(speakers), **kw)]
