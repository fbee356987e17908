"""Differentiable architecture search (first-order DARTS) of each language's tower.

The towers' slots mix every candidate op (``train.model.OPS``) with softmax weights ``alpha``;
weights train on half of the training speakers, ``alpha`` on the other half, with a cost term
(expected multiply-adds of the chosen ops) so that the searched head stays cheap on a CPU. The
genotype is the arg-max op per slot; the caller retrains it from scratch.
"""

from __future__ import annotations

import numpy as np

from . import data
from .fit import train
from .model import SERModel

COST_WEIGHT = 0.05


def split_by_speaker(ds, idx, seed: int) -> tuple[np.ndarray, np.ndarray]:
    speakers = np.unique(ds.speakers[idx])
    val = np.random.default_rng(seed).permutation(speakers)[: max(1, len(speakers) // 2)]
    is_val = np.isin(ds.speakers[idx], val)
    return idx[~is_val], idx[is_val]


def search(
    ds,
    idx,
    gate: str = "input",
    epochs: int = 15,
    seed: int = data.SEED,
    cost_weight: float = COST_WEIGHT,
) -> dict[str, list[str]]:
    """Genotype per language, searched on the clips ``idx`` only (``ds`` standardised)."""
    w_idx, a_idx = split_by_speaker(ds, np.asarray(idx), seed)
    model = SERModel(ds, gate=gate, genotypes={lang: None for lang in ds.langs})
    train(model, ds, w_idx, epochs=epochs, seed=seed, search_idx=a_idx, cost_weight=cost_weight)
    return {lang: tower.derive() for lang, tower in zip(ds.langs, model.towers)}
