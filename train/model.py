"""The paper's models on cached encoder sequences (Wang et al. 2022, arXiv 2211.08237).

Experts are the layers of the Whisper encoders. Their hidden-state sequences come from the feature
cache, averaged over ``STRIDE`` frames (80 ms steps, ``downsample``; the exported head graph does
the same). Per encoder, a mixture of its standardised layers is projected frame by frame; the
encoders' sequences are fused by weights, and the GE2E voice embedding is added to every step. A
tower per language follows: residual ops over time (fixed, or searched by ``train.nas``: per-frame
MLPs, 1-D convolutions, self-attention) and a pooling op (attentive statistics pooling by default),
then a classifier per language. Where the layer and fusion weights come from is the gate:

- ``static``: learned logits per language (the language-specific model when trained on one
language); - ``shared``: one set of learned logits for all languages (multi-domain without gates);
- ``input``: per language, an MLP on the GE2E voice embedding gives a softmax over every
  encoder x layer expert for each input (multi-gating, MMoE-style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from . import data
from .features import load_features, viewed

TEACHER_VARIANTS = ("whisper-base.fp32", "whisper-tiny.en.fp32")
GE2E_VARIANT = "ge2e.fp32"
DIM = 128
STRIDE = 4  # Whisper frames (20 ms) averaged into one step
MAX_STEPS = 40  # training clips are centre-cropped to 3.2 s (the runtime classifies 3 s windows)
TYPICAL_STEPS = 38  # a 3 s window, for the attention cost


def downsample(h: torch.Tensor) -> torch.Tensor:
    """``(L, T, D)`` hidden states -> ``(L, ceil(T / STRIDE), D)`` step means (a last partial step
    averages the frames it has). The same op runs in training and in the exported head graph."""
    x = nn.functional.avg_pool1d(
        h.transpose(1, 2), STRIDE, STRIDE, ceil_mode=True, count_include_pad=False
    )
    return x.transpose(1, 2)


@dataclass
class Dataset:
    """Every clip of the chosen corpora, stacked: per encoder variant the downsampled layer
    sequences ``(N, L, MAX_STEPS, D)`` (zero padded, ``steps`` valid) and their per-clip sums and
    sums of squares over steps, GE2E embedding, language index and label index (each language keeps
    its own label set)."""

    langs: list[str]
    labels: list[list[str]]
    corpora: list[str]
    seq: dict[str, torch.Tensor]  # variant -> (N, L, MAX_STEPS, D)
    sums: dict[str, tuple[torch.Tensor, torch.Tensor]]  # variant -> 2 x (N, L, D), float64
    steps: torch.Tensor  # (N,)
    ge2e: torch.Tensor  # (N, 256)
    lang: torch.Tensor  # (N,)
    y: torch.Tensor  # (N,)
    speakers: np.ndarray  # (N,) "corpus:speaker"
    norm: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None  # set by ``standardized``

    def __len__(self):
        return len(self.y)

    def of(self, li: int) -> np.ndarray:
        return np.flatnonzero(self.lang.numpy() == li)

    def standardized(self, train_idx=None, norm=None) -> Dataset:
        """Every sequence standardised per layer and dimension with the steps of ``train_idx``
        only, or with given ``norm`` statistics (a copy; the statistics go to ``norm`` for the
        model, which keeps them for the export)."""
        if norm is None:
            idx = torch.as_tensor(np.asarray(train_idx))
            n = self.steps[idx].sum()
            norm = {}
            for v, (total, squares) in self.sums.items():
                mean = total[idx].sum(0) / n
                std = (squares[idx].sum(0) / n - mean**2).clamp_min(0).sqrt().clamp_min(1e-4)
                norm[v] = mean.float(), std.float()
        seq = {}
        for v in self.seq:
            seq[v] = torch.empty_like(self.seq[v])
            for i in range(0, len(self), 256):
                torch.div(
                    self.seq[v][i : i + 256] - norm[v][0][:, None],
                    norm[v][1][:, None],
                    out=seq[v][i : i + 256],
                )
        return replace(self, seq=seq, norm=norm)

    def batch(self, idx) -> dict:
        idx = torch.as_tensor(np.asarray(idx))
        steps = self.steps[idx]
        t = int(steps.max())
        out = {v: x[idx, :, :t] for v, x in self.seq.items()}
        out.update(
            mask=torch.arange(t)[None] < steps[:, None],
            ge2e=self.ge2e[idx],
            lang=self.lang[idx],
            y=self.y[idx],
        )
        return out


def pack(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached ``(T, L, D)`` sequences -> downsampled, centre-cropped, zero-padded ``(N, L,
    MAX_STEPS, D)`` + lengths."""
    _, L, D = sequences[0].shape
    out = torch.zeros(len(sequences), L, MAX_STEPS, D)
    steps = torch.zeros(len(sequences), dtype=torch.long)
    for i, s in enumerate(sequences):
        s = downsample(torch.from_numpy(s).float().transpose(0, 1))
        start = max(0, (s.shape[1] - MAX_STEPS) // 2)
        s = s[:, start : start + MAX_STEPS]
        out[i, :, : s.shape[1]], steps[i] = s, s.shape[1]
    return out, steps


def load_dataset(
    corpora, variants=TEACHER_VARIANTS, ge2e: str = GE2E_VARIANT, view: str | None = None
) -> Dataset:
    """``view``: the features of that degraded view of every clip (``train.features``' ``+view``
    variants), under the plain variants' names."""
    langs, labels, seq, emb, lang, y, spk = [], [], {v: [] for v in variants}, [], [], [], []
    for li, corpus in enumerate(corpora):
        items = data.clips(corpus)
        labels.append(data.labels(items))
        langs.append(items[0].language)
        for v in variants:
            f = load_features(viewed(v, view), corpus, seq=True)
            seq[v] += f["seq"]
        emb.append(load_features(viewed(ge2e, view), corpus)["embedding"])
        lang += [li] * len(items)
        y += [labels[-1].index(c.label) for c in items]
        spk += [c.speaker for c in items]
    return make_dataset(langs, labels, list(corpora), seq, np.concatenate(emb), lang, y, spk)


def stack(parts: list[Dataset]) -> Dataset:
    """Datasets of the same clips (views of them) one after the other: clip ``i`` of part ``k`` is
    row ``k * N + i``."""
    first = parts[0]
    cat = lambda get: torch.cat([get(p) for p in parts])
    return replace(
        first,
        seq={v: cat(lambda p: p.seq[v]) for v in first.seq},
        sums={v: (cat(lambda p: p.sums[v][0]), cat(lambda p: p.sums[v][1])) for v in first.sums},
        steps=cat(lambda p: p.steps),
        ge2e=cat(lambda p: p.ge2e),
        lang=cat(lambda p: p.lang),
        y=cat(lambda p: p.y),
        speakers=np.concatenate([p.speakers for p in parts]),
        norm=None,
    )


def make_dataset(
    langs, labels, corpora, seq: dict[str, list[np.ndarray]], ge2e, lang, y, speakers
) -> Dataset:
    """``seq``: per variant, each clip's cached ``(T, L, D)`` hidden states; the rest per clip."""
    packed = {v: pack(s) for v, s in seq.items()}
    steps = next(iter(packed.values()))[1]
    sums = {v: (x.double().sum(2), (x.double() ** 2).sum(2)) for v, (x, _) in packed.items()}
    return Dataset(
        langs,
        labels,
        corpora,
        {v: x for v, (x, _) in packed.items()},
        sums,
        steps,
        torch.as_tensor(np.asarray(ge2e), dtype=torch.float32),
        torch.tensor(lang),
        torch.tensor(y),
        np.array(speakers),
    )


class EncoderBranch(nn.Module):
    """Mix an encoder's standardised layers with the gate's weights, project frame by frame.
    ``mu``/``sd`` (L, D): the standardisation the inputs had (``Dataset.standardized``)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mu", mean.clone())
        self.register_buffer("sd", std.clone())
        self.proj = nn.Sequential(nn.Linear(mean.shape[-1], DIM), nn.GELU())

    def standardize(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T, D)
        return (x - self.mu[:, None]) / self.sd[:, None]

    def forward(
        self, z, layer_weights
    ):  # z (B, L, T, D) standardised, layer_weights (B, L) -> (B, T, DIM)
        B, L, T, D = z.shape
        return self.proj(torch.bmm(layer_weights[:, None], z.reshape(B, L, T * D)).view(B, T, D))


class Gate(nn.Module):
    """Weights over all encoder x layer experts: (B, K), a softmax per sample."""

    def __init__(self, mode: str, n_langs: int, n_experts: int):
        super().__init__()
        self.mode = mode
        if mode == "input":
            self.mlp = nn.ModuleList(
                nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, n_experts))
                for _ in range(n_langs)
            )
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


class MLP(nn.Module):
    def __init__(self, width: int, act=nn.GELU):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(DIM), nn.Linear(DIM, width), act(), nn.Dropout(0.2), nn.Linear(width, DIM)
        )

    def forward(self, x, mask):
        return self.net(x)


class Conv(nn.Module):
    def __init__(self, kernel: int, dilation: int = 1):
        super().__init__()
        self.norm = nn.LayerNorm(DIM)
        self.conv = nn.Conv1d(
            DIM, DIM, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation
        )
        self.drop = nn.Dropout(0.2)

    def forward(self, x, mask):  # padded steps are zero on the way in
        h = self.norm(x) * mask[..., None]
        return self.drop(nn.functional.gelu(self.conv(h.transpose(1, 2)).transpose(1, 2)))


class SelfAttention(nn.Module):
    def __init__(self, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.out = nn.Sequential(nn.Dropout(0.2), nn.Linear(DIM, DIM))

    def forward(self, x, mask):
        B, T, _ = x.shape
        q, k, v = (
            self.qkv(self.norm(x))
            .view(B, T, 3, self.heads, DIM // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(DIM // self.heads)
        scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
        h = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, T, DIM)
        return self.out(h)


def masked_stats(x, weights):
    """Weighted mean and std over time; ``weights`` (B, T) sum to 1 per row."""
    mean = (x * weights[..., None]).sum(1)
    var = (x**2 * weights[..., None]).sum(1) - mean**2
    return mean, var.clamp_min(1e-6).sqrt()


class Pool(nn.Module):
    """Sequence -> vector: ``mean``, ``stats`` (mean + std) or ``attn_stats`` (attentive statistics
    pooling, Okabe et al. 2018); the statistics are projected back to DIM."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "attn_stats":
            self.score = nn.Sequential(nn.Linear(DIM, 64), nn.Tanh(), nn.Linear(64, 1))
        if kind != "mean":
            self.proj = nn.Sequential(nn.Linear(2 * DIM, DIM), nn.GELU())

    def forward(self, x, mask):
        if self.kind == "attn_stats":
            w = torch.softmax(self.score(x)[..., 0].masked_fill(~mask, -1e4), -1)
        else:
            w = mask.float() / mask.sum(1, keepdim=True)
        mean, std = masked_stats(x, w)
        return mean if self.kind == "mean" else self.proj(torch.cat([mean, std], -1))


OPS = {  # residual tower ops on a (B, T, DIM) sequence; cost = multiply-adds per step
    "skip": (nn.Identity, 0),
    "mlp128_gelu": (lambda: MLP(128), 2 * DIM * 128),
    "mlp256_gelu": (lambda: MLP(256), 2 * DIM * 256),
    "mlp256_tanh": (lambda: MLP(256, nn.Tanh), 2 * DIM * 256),
    "conv3": (lambda: Conv(3), 3 * DIM * DIM),
    "conv5": (lambda: Conv(5), 5 * DIM * DIM),
    "conv3_dil2": (lambda: Conv(3, 2), 3 * DIM * DIM),
    "self_attention": (lambda: SelfAttention(), 4 * DIM * DIM + 2 * TYPICAL_STEPS * DIM),
}
POOLS = {
    "mean": 0,
    "stats": 2 * DIM * DIM,
    "attn_stats": DIM * 64 + 2 * DIM * DIM,
}  # per clip; + scores per step
DEFAULT_GENOTYPE = ["mlp256_gelu", "attn_stats"]


class Tower(nn.Module):
    """Residual slots over time, then a pooling op. A genotype names each slot's op and, last, the
    pooling; with ``genotype=None`` every slot (and the pooling) is a DARTS mixture of all
    candidates."""

    def __init__(self, genotype: list[str] | None, slots: int = 2):
        super().__init__()
        self.genotype = genotype
        if genotype is None:  # searching
            self.ops = nn.ModuleList(nn.ModuleList(OPS[o][0]() for o in OPS) for _ in range(slots))
            self.pools = nn.ModuleList(Pool(p) for p in POOLS)
            self.alpha = nn.Parameter(1e-3 * torch.randn(slots, len(OPS)))
            self.alpha_pool = nn.Parameter(1e-3 * torch.randn(len(POOLS)))
        else:
            self.ops = nn.ModuleList(OPS[o][0]() for o in genotype[:-1])
            self.pool = Pool(genotype[-1])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].float()
        if self.genotype is not None:
            for op in self.ops:
                x = x if isinstance(op, nn.Identity) else (x + op(x, mask)) * m
            return self.pool(x, mask)
        for slot, weights in zip(self.ops, torch.softmax(self.alpha, -1)):
            x = sum(
                w * (x if isinstance(op, nn.Identity) else (x + op(x, mask)) * m)
                for w, op in zip(weights, slot)
            )
        return sum(
            w * pool(x, mask) for w, pool in zip(torch.softmax(self.alpha_pool, -1), self.pools)
        )

    def expected_cost(self) -> torch.Tensor:
        """Expected multiply-adds of a clip of TYPICAL_STEPS, relative to the costliest choice."""
        ops = torch.tensor([c for _, c in OPS.values()], dtype=torch.float32) * TYPICAL_STEPS
        pools = torch.tensor(list(POOLS.values()), dtype=torch.float32)
        pools[-1] += 64 * DIM * TYPICAL_STEPS  # attention scores over every step
        cost = (torch.softmax(self.alpha, -1) * ops).sum() + (
            torch.softmax(self.alpha_pool, -1) * pools
        ).sum()
        return cost / (len(self.alpha) * ops.max() + pools.max())

    def derive(self) -> list[str]:
        names = list(OPS)
        return [names[int(i)] for i in self.alpha.argmax(-1)] + [
            list(POOLS)[int(self.alpha_pool.argmax())]
        ]


class SERModel(nn.Module):
    def __init__(
        self,
        ds: Dataset,
        gate: str = "static",
        genotypes: dict[str, list[str] | None] | None = None,
    ):
        """``ds``: a standardised dataset (``Dataset.standardized(train_idx)``)."""
        super().__init__()
        if ds.norm is None:
            raise ValueError("SERModel needs a standardised Dataset: ds.standardized(train_idx)")
        self.variants, self.langs = list(ds.seq), list(ds.langs)
        self.layers = [x.shape[1] for x in ds.seq.values()]
        self.branches = nn.ModuleList(EncoderBranch(*ds.norm[v]) for v in self.variants)
        self.gate = Gate(gate, len(self.langs), sum(self.layers))
        self.ge2e_proj = nn.Sequential(nn.Linear(256, DIM), nn.GELU())
        genotypes = genotypes or {}
        self.towers = nn.ModuleList(
            Tower(genotypes.get(lang, DEFAULT_GENOTYPE)) for lang in self.langs
        )
        self.heads = nn.ModuleList(nn.Linear(DIM, len(labels)) for labels in ds.labels)

    def gate_weights(self, batch) -> torch.Tensor:
        return self.gate(batch["ge2e"], batch["lang"])

    def embed(self, batch) -> torch.Tensor:
        """The fused sequence ``(B, T, DIM)`` (padded steps zero)."""
        g = self.gate_weights(batch)
        fused, k = 0, 0
        for v, branch, L in zip(self.variants, self.branches, self.layers):
            part = g[:, k : k + L]
            mass = part.sum(1, keepdim=True)
            fused = fused + mass[:, None] * branch(batch[v], part / mass)
            k += L
        fused = fused + self.ge2e_proj(batch["ge2e"])[:, None]
        return fused * batch["mask"][..., None]

    def language_logits(self, batch, li: int) -> torch.Tensor:
        """Logits of language ``li`` for every sample (traceable: used by the ONNX export)."""
        return self.heads[li](self.towers[li](self.embed(batch), batch["mask"]))

    def forward(self, batch) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor, torch.Tensor]]]:
        """Pooled tower outputs ``(B, DIM)`` and, per language in the batch, ``(lang, indices,
        logits)``."""
        z = self.embed(batch)
        towers, groups = torch.zeros(len(z), DIM), []
        for li in batch["lang"].unique().tolist():
            idx = (batch["lang"] == li).nonzero().squeeze(1)
            t = self.towers[li](z[idx], batch["mask"][idx])
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
    log_prob = sim.masked_fill(eye, -1e9) - torch.logsumexp(
        sim.masked_fill(eye, -1e9), dim=1, keepdim=True
    )
    has = pos.any(1)
    if not has.any():
        return z.sum() * 0
    per_anchor = -(log_prob * pos).sum(1)[has] / pos.sum(1)[has]
    return per_anchor.mean()
