"""The paper's models on cached encoder features (Wang et al. 2022, arXiv 2211.08237).

Experts are the layers of the Whisper encoders, each pooled over time into mean and standard
deviation (the feature cache holds them). For each encoder, a layer mixture of its standardised
statistics is projected; the encoders' vectors are fused by weights; a tower per language (fixed, or searched by ``train.nas``)
and a classifier per language follow. Where the layer and fusion weights come from is the gate:

- ``static``: learned logits per language (the language-specific model when trained on one language);
- ``shared``: one set of learned logits for all languages (multi-domain without gates);
- ``input``: per language, an MLP on the GE2E voice embedding gives a softmax over every
  encoder x layer expert for each input (multi-gating, MMoE-style).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import data
from .features import load_features

TEACHER_VARIANTS = ("whisper-base.fp32", "whisper-tiny.en.fp32")
GE2E_VARIANT = "ge2e.fp32"
DIM = 256


@dataclass
class Dataset:
    """Every clip of the chosen corpora, stacked: per-layer time mean/std per encoder variant,
    GE2E embedding, language index and label index (each language keeps its own label set)."""
    langs: list[str]
    labels: list[list[str]]
    corpora: list[str]
    pooled: dict[str, torch.Tensor]   # variant -> (N, L, 2D)
    ge2e: torch.Tensor                # (N, 256)
    lang: torch.Tensor                # (N,)
    y: torch.Tensor                   # (N,)
    speakers: np.ndarray              # (N,) "corpus:speaker"

    def __len__(self):
        return len(self.y)

    def of(self, li: int) -> np.ndarray:
        return np.flatnonzero(self.lang.numpy() == li)

    def batch(self, idx) -> dict:
        idx = torch.as_tensor(np.asarray(idx))
        out = {v: x[idx] for v, x in self.pooled.items()}
        out.update(ge2e=self.ge2e[idx], lang=self.lang[idx], y=self.y[idx])
        return out


def load_dataset(corpora, variants=TEACHER_VARIANTS, ge2e: str = GE2E_VARIANT) -> Dataset:
    langs, labels, pooled, emb, lang, y, spk = [], [], {v: [] for v in variants}, [], [], [], []
    for li, corpus in enumerate(corpora):
        items = data.clips(corpus)
        labels.append(data.labels(items))
        langs.append(items[0].language)
        for v in variants:
            f = load_features(v, corpus)
            pooled[v].append(np.concatenate([f["mean"], f["std"]], axis=-1))
        emb.append(load_features(ge2e, corpus)["embedding"])
        lang += [li] * len(items)
        y += [labels[-1].index(c.label) for c in items]
        spk += [c.speaker for c in items]
    return Dataset(langs, labels, list(corpora), {v: torch.from_numpy(np.concatenate(x)) for v, x in pooled.items()},
                   torch.from_numpy(np.concatenate(emb)), torch.tensor(lang), torch.tensor(y), np.array(spk))


class EncoderBranch(nn.Module):
    """Standardise an encoder's per-layer statistics, mix them with the gate's weights, project."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("sd", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-4))
        self.proj = nn.Sequential(nn.Dropout(0.3), nn.Linear(mean.shape[-1], DIM), nn.GELU())

    def forward(self, x, layer_weights):  # x (B, L, 2D), layer_weights (B, L)
        return self.proj(torch.einsum("bld,bl->bd", (x - self.mu) / self.sd, layer_weights))


class Gate(nn.Module):
    """Weights over all encoder x layer experts: (B, K), a softmax per sample."""

    def __init__(self, mode: str, n_langs: int, n_experts: int):
        super().__init__()
        self.mode = mode
        if mode == "input":
            self.mlp = nn.ModuleList(nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, n_experts))
                                     for _ in range(n_langs))
        else:
            self.logits = nn.Parameter(torch.zeros(1 if mode == "shared" else n_langs, n_experts))

    def forward(self, ge2e: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        if self.mode == "input":
            out = torch.stack([m(ge2e) for m in self.mlp], 1)  # (B, n_langs, K)
            logits = out[torch.arange(len(lang)), lang]
        elif self.mode == "shared":
            logits = self.logits.expand(len(lang), -1)
        else:
            logits = self.logits[lang]
        return torch.softmax(logits, dim=-1)


OPS = {  # tower candidate ops on a DIM-wide state, residual; cost = multiply-adds
    "skip": None,
    "mlp64_gelu": (64, nn.GELU), "mlp128_gelu": (128, nn.GELU), "mlp256_gelu": (256, nn.GELU),
    "mlp256_tanh": (256, nn.Tanh), "mlp256_relu": (256, nn.ReLU), "mlp512_gelu": (512, nn.GELU),
}


def op_cost(name: str) -> int:
    return 0 if OPS[name] is None else 2 * DIM * OPS[name][0]


def make_op(name: str) -> nn.Module:
    if OPS[name] is None:
        return nn.Identity()
    width, act = OPS[name]
    return nn.Sequential(nn.LayerNorm(DIM), nn.Linear(DIM, width), act(), nn.Dropout(0.2), nn.Linear(width, DIM))


class Tower(nn.Module):
    """A chain of residual slots; each slot is one op (a genotype) or a DARTS mixture of all ops."""

    def __init__(self, genotype: list[str] | None, slots: int = 2):
        super().__init__()
        self.genotype = genotype
        if genotype is None:  # searching
            self.ops = nn.ModuleList(nn.ModuleList(make_op(o) for o in OPS) for _ in range(slots))
            self.alpha = nn.Parameter(1e-3 * torch.randn(slots, len(OPS)))
        else:
            self.ops = nn.ModuleList(make_op(o) for o in genotype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.genotype is not None:
            for op in self.ops:
                x = x if isinstance(op, nn.Identity) else x + op(x)
            return x
        for slot, weights in zip(self.ops, torch.softmax(self.alpha, -1)):
            x = sum(w * (x if isinstance(op, nn.Identity) else x + op(x)) for w, op in zip(weights, slot))
        return x

    def expected_cost(self) -> torch.Tensor:
        costs = torch.tensor([op_cost(o) for o in OPS], dtype=torch.float32)
        return (torch.softmax(self.alpha, -1) * costs).sum() / costs.max()

    def derive(self) -> list[str]:
        names = list(OPS)
        return [names[int(i)] for i in self.alpha.argmax(-1)]


class SERModel(nn.Module):
    def __init__(self, ds: Dataset, train_idx, gate: str = "static",
                 genotypes: dict[str, list[str] | None] | None = None, use_ge2e: bool = True):
        super().__init__()
        self.variants, self.langs = list(ds.pooled), list(ds.langs)
        self.layers = [x.shape[1] for x in ds.pooled.values()]
        branches = []
        for x in ds.pooled.values():  # standardisation from the training clips only
            x = x[torch.as_tensor(np.asarray(train_idx))].numpy()
            branches.append(EncoderBranch(x.mean(0), x.std(0)))
        self.branches = nn.ModuleList(branches)
        self.gate = Gate(gate, len(self.langs), sum(self.layers))
        self.use_ge2e = use_ge2e
        self.ge2e_proj = nn.Sequential(nn.Linear(256, DIM), nn.GELU()) if use_ge2e else None
        genotypes = genotypes or {}
        self.towers = nn.ModuleList(Tower(genotypes.get(lang, ["mlp256_gelu"])) for lang in self.langs)
        self.heads = nn.ModuleList(nn.Linear(DIM, len(labels)) for labels in ds.labels)

    def gate_weights(self, batch) -> torch.Tensor:
        return self.gate(batch["ge2e"], batch["lang"])

    def embed(self, batch) -> torch.Tensor:
        g = self.gate_weights(batch)
        fused, k = 0, 0
        for v, branch, L in zip(self.variants, self.branches, self.layers):
            part = g[:, k:k + L]
            mass = part.sum(1, keepdim=True)
            fused = fused + mass * branch(batch[v], part / mass)
            k += L
        if self.use_ge2e:
            fused = fused + self.ge2e_proj(batch["ge2e"])
        return fused

    def language_logits(self, batch, li: int) -> torch.Tensor:
        """Logits of language ``li`` for every sample (traceable: used by the ONNX export)."""
        return self.heads[li](self.towers[li](self.embed(batch)))

    def forward(self, batch) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor, torch.Tensor]]]:
        """Tower outputs ``(B, DIM)`` and, per language in the batch, ``(lang, indices, logits)``."""
        z = self.embed(batch)
        towers, groups = torch.zeros_like(z), []
        for li in batch["lang"].unique().tolist():
            idx = (batch["lang"] == li).nonzero().squeeze(1)
            t = self.towers[li](z[idx])
            towers = towers.index_copy(0, idx, t)
            groups.append((li, idx, self.heads[li](t)))
        return towers, groups


def supcon(z: torch.Tensor, y: torch.Tensor, lang: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) on L2-normalised embeddings; positives share
    language and label. Anchors without a positive are skipped (0 when none has one)."""
    z = nn.functional.normalize(z, dim=-1)
    sim = z @ z.T / tau
    eye = torch.eye(len(z), dtype=torch.bool)
    pos = (y[:, None] == y[None, :]) & (lang[:, None] == lang[None, :]) & ~eye
    log_prob = sim.masked_fill(eye, -1e9) - torch.logsumexp(sim.masked_fill(eye, -1e9), dim=1, keepdim=True)
    has = pos.any(1)
    if not has.any():
        return z.sum() * 0
    per_anchor = -(log_prob * pos).sum(1)[has] / pos.sum(1)[has]
    return per_anchor.mean()
