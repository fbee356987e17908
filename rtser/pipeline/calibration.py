"""How a head's probabilities become what people are shown, chosen for voices the head never heard
(``bench/strangers.py``): a per-class bias and a temperature make the probabilities mean what they
say, and a label other than neutral is shown only when its probability clears a threshold.

Heads are trained on acted corpora; on a stranger's voice their log-probabilities shift by an
offset that favours some negative label, and they are sure of themselves while wrong. The bias
takes out the offset measured on corpora the head never heard, the temperature spreads the
probabilities to their accuracy there, and the threshold keeps neutral the answer when the
evidence for anything else is weak: a supervisor's alert must be rare and right. ``reference`` is
where a site's running baseline belongs (``site.SiteBaseline``); ``shifted`` applies its offset."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import RtserError

NEUTRAL = "neutral"


@dataclass(frozen=True)
class Calibration:
    """``bias`` (per class, added to the log-probabilities) and ``temperature`` (dividing them)
    give the calibrated probabilities; a label other than ``neutral`` is shown only when its
    calibrated probability reaches ``threshold``. ``reference``: the calibrated head's mean
    log-probabilities on strangers' mostly neutral speech (None: not measured, so no site
    baseline). The identity when a head has none.

    >>> cal = Calibration.from_spec({"bias": [0.1, -0.2, 0.1], "temperature": 1.5,
    ...                              "threshold": 0.6}, ["anger", "neutral", "sadness"])
    >>> probs = cal.probs(raw_probs)
    >>> cal.label(probs)
    'neutral'
    """

    labels: tuple[str, ...]
    bias: np.ndarray
    temperature: float = 1.0
    threshold: float = 0.0
    reference: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: dict | None, labels: list[str]) -> Calibration:
        """From a bundle manifest's ``calibration`` of a language (None: the identity)."""
        spec = spec or {}
        bias = np.asarray(spec.get("bias", np.zeros(len(labels))), np.float64)
        temperature, threshold = (
            float(spec.get("temperature", 1.0)),
            float(spec.get("threshold", 0.0)),
        )
        reference = spec.get("reference")
        if reference is not None:
            reference = np.asarray(reference, np.float64)
        if (
            bias.shape != (len(labels),)
            or not temperature > 0
            or not 0 <= threshold <= 1
            or (reference is not None and reference.shape != bias.shape)
        ):
            raise RtserError(
                "a calibration needs one bias per label, a temperature > 0, a threshold in "
                "[0, 1] and at most one reference value per label; rebuild the bundle"
            )
        return cls(tuple(labels), bias, temperature, threshold, reference)

    @property
    def neutral(self) -> str | None:
        """The label shown when no other has the evidence (None: the head has no neutral)."""
        return NEUTRAL if NEUTRAL in self.labels else None

    def probs(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw head probabilities (last axis: classes)."""
        z = (np.log(np.maximum(raw, 1e-12)) + self.bias) / self.temperature
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def shifted(self, offset: np.ndarray) -> Calibration:
        """This calibration with ``offset`` (per label) taken from its log-probabilities."""
        return replace(self, bias=self.bias - self.temperature * np.asarray(offset, np.float64))

    def label(self, probs: np.ndarray) -> str:
        """The shown label of calibrated probabilities: the most probable when it is neutral or
        clears ``threshold``, else neutral."""
        top = int(np.argmax(probs))
        if self.neutral is None or probs[top] >= self.threshold:
            return self.labels[top]
        return self.neutral
