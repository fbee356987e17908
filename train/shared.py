"""A representation the languages share, for enrolling a new one: a trunk on the pooled chunk
features (per encoder: standardised layer statistics mixed by learned layer weights; then
Linear -> GELU to ``WIDTH``) trained on several corpora at once, each with its own classifier on
top (multi-task, class-weighted cross-entropy), on the clean clips and a phone-call and a
noisy-room view of each (``VIEWS``). ``bench/enroll.py`` compares enrolling on its output with
enrolling on the raw layer statistics, each corpus held out in turn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rtser.pipeline.heads import NumpyHead

from . import data, heads
from .distill import student_inputs
from .features import CLEAN

WIDTH = 256
# Not the language heads' third view (the phone call without the analogue band): with it, enrolling
# a held-out corpus got worse at 12 and 24 clips per emotion (bench/enroll.py: mean 0.561 -> 0.541
# and 0.601 -> 0.563; one seed, 5 repeats), so the trunk keeps these two.
VIEWS = ("phone", "noisy")


class Trunk(nn.Module):
    def __init__(self, feats: dict[str, np.ndarray], classes: list[int], dropout: float = 0.3):
        super().__init__()
        self.names = list(feats)
        self.pool = nn.ModuleList(heads.LayerWeighted(x.mean(0), x.std(0)) for x in feats.values())
        width = sum(x.shape[-1] for x in feats.values())
        self.body = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(width, WIDTH), nn.GELU(approximate="tanh")
        )
        self.classifiers = nn.ModuleList(
            nn.Sequential(nn.Dropout(dropout), nn.Linear(WIDTH, n)) for n in classes
        )

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat([p(feats[n]) for n, p in zip(self.names, self.pool)], -1))


def fit(
    corpora: list[str],
    epochs: int = 30,
    lr: float = 2e-3,
    seed: int = data.SEED,
    keep: dict[str, np.ndarray] | None = None,
) -> Trunk:
    """The trunk, trained on every clip (clean and each training view) of ``corpora``; ``keep``:
    for a corpus named there, only its clips where the mask is true (its training speakers)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    parts, ys, task = [], [], []
    for t, corpus in enumerate(corpora):
        items = data.clips(corpus)
        labels = data.labels(items)
        rows = (keep or {}).get(corpus, np.ones(len(items), bool))
        y = np.array([labels.index(c.label) for c in items])[rows]
        for view in (CLEAN, *VIEWS):
            parts.append({n: x[rows] for n, x in student_inputs(corpus, view).items()})
            ys.append(y)
            task.append(np.full(len(y), t))
    feats = {
        n: torch.as_tensor(np.concatenate([p[n] for p in parts]), dtype=torch.float32)
        for n in parts[0]
    }
    y, task = torch.as_tensor(np.concatenate(ys)), np.concatenate(task)
    classes = [len(data.labels(data.clips(c))) for c in corpora]
    model = Trunk({n: x.numpy() for n, x in feats.items()}, classes)
    weights = [
        torch.as_tensor(
            len(y[task == t]) / np.maximum(np.bincount(y[task == t], minlength=n), 1) / n,
            dtype=torch.float32,
        )
        for t, n in enumerate(classes)
    ]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    model.train()
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 64)):
            opt.zero_grad()
            h = model({n: x[batch] for n, x in feats.items()})
            loss = 0
            for t, head in enumerate(model.classifiers):
                rows = np.flatnonzero(task[batch] == t)
                if len(rows):
                    loss = loss + nn.functional.cross_entropy(
                        head(h[rows]), y[batch][rows], weight=weights[t], reduction="sum"
                    )
            (loss / len(batch)).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def to_numpy(model: Trunk) -> NumpyHead:
    """The trunk as the runtime runs it (``NumpyHead`` without a classifier: ``features``
    embeds)."""
    params = {}
    for n, p in zip(model.names, model.pool):
        params[f"{n}/mu"], params[f"{n}/sd"] = p.mu.numpy(), p.sigma.numpy()
        if p.logits is not None:
            params[f"{n}/layer_logits"] = p.logits.numpy()
    linear = model.body[1]
    params["hidden/W"], params["hidden/b"] = linear.weight.T.numpy().copy(), linear.bias.numpy()
    return NumpyHead({k: v.astype(np.float32) for k, v in params.items()}, model.names)
