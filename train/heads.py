"""Linear heads per language on pooled encoder features (distillation students; the shipped head
averages one of them with the multi-domain student).

Input per Whisper encoder: per-layer time mean and std ``(B, L+1, 2D)``; per GE2E: ``(B, 256)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import data
from .features import load_features, viewed


def pooled(variant: str, corpus: str, view: str | None = None) -> np.ndarray:
    f = load_features(viewed(variant, view), corpus)
    return f["embedding"] if "embedding" in f else np.concatenate([f["mean"], f["std"]], axis=-1)


class LayerWeighted(nn.Module):
    """Softmax-weighted sum over an encoder's layers of standardised pooled statistics."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("sigma", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-5))
        self.logits = nn.Parameter(torch.zeros(mean.shape[0])) if mean.ndim == 2 else None

    @property
    def weights(self) -> torch.Tensor | None:
        return None if self.logits is None else torch.softmax(self.logits, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mu) / self.sigma
        return z if self.logits is None else torch.einsum("l,bld->bd", self.weights, z)


class PooledHead(nn.Module):
    """Language-specific model: per-encoder learned layer weights -> concat -> MLP -> logits."""

    def __init__(
        self,
        stats: dict[str, tuple[np.ndarray, np.ndarray]],
        n_classes: int,
        hidden: int = 0,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.names = list(stats)
        self.pool = nn.ModuleDict({self._key(n): LayerWeighted(*s) for n, s in stats.items()})
        width = sum(s[0].shape[-1] for s in stats.values())
        self.mlp = (
            nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(width, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_classes),
            )
            if hidden
            else nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_classes))
        )

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "_")

    def embed(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.pool[self._key(n)](feats[n]) for n in self.names], dim=-1)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.mlp(self.embed(feats))


def fit(
    feats: dict[str, np.ndarray],
    y: np.ndarray,
    n_classes: int,
    epochs: int = 40,
    lr: float = 3e-3,
    weight_decay: float = 0.5,
    layer_lr: float = 10.0,
    seed: int = data.SEED,
    teacher: np.ndarray | None = None,
    kd_weight: float = 0.7,
    temperature: float = 2.0,
    **head_kw,
) -> PooledHead:
    """Train a PooledHead with class-weighted cross-entropy (AdamW, mini-batches of 32; the layer
    weights learn ``layer_lr`` times faster). Defaults chosen by speaker-independent CV on
    emodb/emovo.
    With ``teacher`` probabilities ``(N, C)``: knowledge distillation, ``kd_weight`` x T² x
    KL(teacher_T || student_T) + (1 - kd_weight) x cross-entropy, at temperature T."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    stats = {n: (x.mean(0), x.std(0)) for n, x in feats.items()}
    model = PooledHead(stats, n_classes, **head_kw)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(counts.sum() / np.maximum(counts, 1) / n_classes)
    )
    layer = [p for n, p in model.named_parameters() if n.endswith("logits")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("logits")]
    opt = torch.optim.AdamW(
        [{"params": rest}, {"params": layer, "lr": lr * layer_lr, "weight_decay": 0}],
        lr=lr,
        weight_decay=weight_decay,
    )
    tensors = {n: torch.as_tensor(x, dtype=torch.float32) for n, x in feats.items()}
    target = torch.as_tensor(y)
    soft = None
    if teacher is not None:  # soften the teacher: p^(1/T), renormalised
        soft = torch.softmax(
            torch.log(torch.as_tensor(teacher, dtype=torch.float32).clamp_min(1e-8)) / temperature,
            -1,
        )
    model.train()
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 32)):
            opt.zero_grad()
            logits = model({n: t[batch] for n, t in tensors.items()})
            loss = loss_fn(logits, target[batch])
            if soft is not None:
                kl = nn.functional.kl_div(
                    torch.log_softmax(logits / temperature, -1), soft[batch], reduction="batchmean"
                )
                loss = (1 - kd_weight) * loss + kd_weight * temperature**2 * kl
            loss.backward()
            opt.step()
    return model.eval()


def predict(model: PooledHead, feats: dict[str, np.ndarray]) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.softmax(
            model({n: torch.as_tensor(x, dtype=torch.float32) for n, x in feats.items()}), -1
        ).numpy()
