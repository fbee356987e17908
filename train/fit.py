"""Training and prediction loops for ``train.model.SERModel`` (and the DARTS search)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .model import Dataset, SERModel, supcon


def batches(idx: np.ndarray, size: int, rng) -> list[np.ndarray]:
    order = rng.permutation(np.asarray(idx))
    return [order[i : i + size] for i in range(0, len(order), size)]


def class_weights(ds: Dataset, idx) -> list[torch.Tensor]:
    lang, y = ds.lang.numpy()[idx], ds.y.numpy()[idx]
    out = []
    for li, labels in enumerate(ds.labels):
        counts = np.bincount(y[lang == li], minlength=len(labels)).astype(np.float32)
        out.append(torch.tensor(counts.sum() / np.maximum(counts, 1) / len(counts)))
    return out


def loss_fn(
    model: SERModel,
    batch,
    weights,
    supcon_weight: float = 0.0,
    tau: float = 0.1,
    kd_weight: float = 0.9,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Class-weighted cross-entropy (+ SupCon); with ``batch["soft"]`` (teacher probabilities,
    padded to the largest label set) knowledge distillation: kd x T² x KL + (1 - kd) x CE."""
    towers, groups = model(batch)
    loss = 0
    for li, idx, logits in groups:
        ce = nn.functional.cross_entropy(
            logits, batch["y"][idx], weight=weights[li], reduction="sum"
        )
        if "soft" in batch:
            teacher = batch["soft"][idx, : logits.shape[1]].clamp_min(1e-8)
            soft = torch.softmax(teacher.log() / temperature, -1)
            kl = nn.functional.kl_div(
                torch.log_softmax(logits / temperature, -1), soft, reduction="sum"
            )
            ce = (1 - kd_weight) * ce + kd_weight * temperature**2 * kl
        loss = loss + ce
    loss = loss / len(batch["y"])
    if supcon_weight:
        loss = loss + supcon_weight * supcon(towers, batch["y"], batch["lang"], tau)
    return loss


def train(
    model: SERModel,
    ds: Dataset,
    idx,
    epochs: int = 30,
    lr: float = 2e-3,
    supcon_weight: float = 0.0,
    seed: int = 12345,
    batch_size: int = 64,
    search_idx=None,
    cost_weight: float = 0.0,
    teacher: torch.Tensor | None = None,
) -> SERModel:
    """AdamW (one-cycle) on the weights; with ``search_idx`` also first-order DARTS on the towers'
    ``alpha`` (on those validation clips, plus ``cost_weight`` x the towers' expected
    multiply-adds).
    ``teacher``: ``(N, max classes)`` probabilities of every clip, for distillation."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    is_arch = lambda name: name.rsplit(".", 1)[-1].startswith("alpha")
    alphas = [p for n, p in model.named_parameters() if is_arch(n)]
    params = [p for n, p in model.named_parameters() if not is_arch(n)]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    steps = epochs * len(batches(idx, batch_size, rng))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    arch_opt = (
        torch.optim.Adam(alphas, lr=3e-3, betas=(0.5, 0.999)) if search_idx is not None else None
    )
    weights = class_weights(ds, idx)
    model.train()
    for _ in range(epochs):
        val = batches(search_idx, batch_size, rng) if arch_opt else []
        for step, b in enumerate(batches(idx, batch_size, rng)):
            if arch_opt:
                arch_opt.zero_grad()
                cost = sum(t.expected_cost() for t in model.towers) / len(model.towers)
                (
                    loss_fn(model, ds.batch(val[step % len(val)]), weights) + cost_weight * cost
                ).backward()
                arch_opt.step()
            opt.zero_grad()
            batch = ds.batch(b)
            if teacher is not None:
                batch["soft"] = teacher[torch.as_tensor(b)]
            loss_fn(model, batch, weights, supcon_weight).backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: SERModel, ds: Dataset, idx) -> list[np.ndarray]:
    """Class probabilities per clip (each of its own language's size), in ``idx`` order."""
    model.eval()
    idx = np.asarray(idx)
    out = []
    for start in range(0, len(idx), 256):
        part = [None] * len(idx[start : start + 256])
        for li, rows, logits in model(ds.batch(idx[start : start + 256]))[1]:
            for j, p in zip(rows.tolist(), torch.softmax(logits, -1).numpy()):
                part[j] = p
        out += part
    return out


def padded(probs: list[np.ndarray]) -> torch.Tensor:
    """Per-clip probabilities of different label-set sizes -> ``(N, max classes)``, zero padded."""
    out = torch.zeros(len(probs), max(len(p) for p in probs))
    for i, p in enumerate(probs):
        out[i, : len(p)] = torch.as_tensor(p)
    return out


@torch.no_grad()
def gate_means(model: SERModel, ds: Dataset, idx) -> dict[str, np.ndarray]:
    """Mean gate weights over encoder x layer experts, per language."""
    model.eval()
    idx = np.asarray(idx)
    g = model.gate_weights({"ge2e": ds.ge2e[idx], "lang": ds.lang[idx]}).numpy()
    lang = ds.lang.numpy()[idx]
    return {name: g[lang == li].mean(0) for li, name in enumerate(ds.langs) if (lang == li).any()}
