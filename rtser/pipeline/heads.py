"""A head evaluated in numpy: learned layer weights over standardised per-layer time mean + std of
each Whisper encoder (and the GE2E embedding), optionally a hidden layer (the bundle's shared
trunk), then a linear softmax classifier, optionally with a prior from another head (an enrolled
language's classes lean towards what the bundle's emotion head hears).
``rtser enroll`` writes these (``.npz``), so new languages need neither torch nor onnx."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np


def pool(hidden: np.ndarray) -> np.ndarray:
    """``(L+1, T, D)`` hidden states -> ``(L+1, 2D)`` time mean and std; a 1-D embedding passes."""
    return hidden if hidden.ndim == 1 else np.concatenate([hidden.mean(1), hidden.std(1)], -1)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (torch's ``nn.GELU(approximate="tanh")``)."""
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


PRIOR = "prior/"  # the keys of a prior head inside a head's file


class Prior(NamedTuple):
    """Another head reading the same inputs, and a ``(its classes, these classes)`` matrix: its
    log-probabilities relative to uniform, times ``weights``, add to a head's logits."""

    head: NumpyHead
    weights: np.ndarray


class NumpyHead:
    """Parameters per input name ``n``: ``n/mu``, ``n/sd`` (standardisation), ``n/layer_logits``
    (Whisper inputs only); optionally ``hidden/W`` ``(features, width)`` and ``hidden/b`` (a GELU
    layer: the shared trunk); then ``W`` ``(features or width, classes)`` and ``b``. A trunk alone
    (the bundle's ``shared.npz``) has no ``W``.

    ``prior``: an optional ``Prior`` (an enrolled language leaning on the bundle's emotion head).

    >>> head = NumpyHead.load("head-sw.npz")
    >>> probs = head.probs({"whisper-base": pooled_states, "ge2e": voice})  # (N, classes)
    """

    def __init__(
        self, params: dict[str, np.ndarray], inputs: list[str], prior: Prior | None = None
    ):
        self.params, self.inputs, self.prior = params, list(inputs), prior

    @classmethod
    def load(cls, path: Path) -> NumpyHead:
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumpyHead:
        own = {k: v for k, v in arrays.items() if not k.startswith(PRIOR)}
        inner = {k[len(PRIOR) :]: v for k, v in arrays.items() if k.startswith(PRIOR)}
        prior = None
        if inner:
            weights = inner.pop("weights")
            prior = Prior(cls.from_arrays(inner), weights)
        return cls(own, [str(n) for n in own.pop("inputs")], prior)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"inputs": np.array(self.inputs), **self.params}
        if self.prior:
            inner = {**self.prior.head.arrays(), "weights": self.prior.weights}
            out.update({PRIOR + k: v for k, v in inner.items()})
        return out

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:  # a file object keeps the exact name (np.savez would add .npz)
            np.savez(f, **self.arrays())

    def features(self, pooled: dict[str, np.ndarray]) -> np.ndarray:
        """``pooled[name]``: ``(N, L+1, 2D)`` or ``(N, 256)`` -> ``(N, features)`` (the trunk's
        output when there is one)."""
        p = self.params
        return self.combine({n: (pooled[n] - p[f"{n}/mu"]) / p[f"{n}/sd"] for n in self.inputs})

    def combine(self, z: dict[str, np.ndarray]) -> np.ndarray:
        """``features`` of standardised inputs ``z``: the layers weighted, the inputs side by
        side."""
        parts = [
            np.einsum("l,nld->nd", softmax(self.params[f"{n}/layer_logits"]), z[n])
            if z[n].ndim == 3
            else z[n]
            for n in self.inputs
        ]
        x = np.concatenate(parts, axis=-1)
        return (
            gelu(x @ self.params["hidden/W"] + self.params["hidden/b"])
            if "hidden/W" in self.params
            else x
        )

    def log_probs(self, pooled: dict[str, np.ndarray]) -> np.ndarray:
        logits = self.features(pooled) @ self.params["W"] + self.params["b"]
        if self.prior:
            logits = logits + prior_terms(self.prior.head, pooled) @ self.prior.weights
        return log_softmax(logits)

    def probs(self, pooled: dict[str, np.ndarray]) -> np.ndarray:
        return np.exp(self.log_probs(pooled))

    def with_classifier(self, classifier: NumpyHead) -> NumpyHead:
        """This trunk with a classifier fitted on its output (``{name: (N, width)}``, one input):
        one head that reads the encoders, the classifier's standardisation folded into its
        weights."""
        (name,) = classifier.inputs
        mu, sd = classifier.params[f"{name}/mu"], classifier.params[f"{name}/sd"]
        w = classifier.params["W"] / sd[:, None]
        params = {k: v for k, v in self.params.items() if k not in ("W", "b")}
        return NumpyHead({**params, "W": w, "b": classifier.params["b"] - mu @ w}, self.inputs)

    def run(self, _outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Same call as an onnxruntime session: raw encoder outputs in, ``[probs]`` out."""
        return [self.probs({n: pool(feeds[n])[None] for n in self.inputs})[0]]


def prior_terms(head: NumpyHead, pooled: dict[str, np.ndarray]) -> np.ndarray:
    """``head``'s log-probabilities relative to uniform ``(N, its classes)``: 0 where it cannot
    tell."""
    log_p = head.log_probs(pooled)
    return log_p + np.log(log_p.shape[-1])
