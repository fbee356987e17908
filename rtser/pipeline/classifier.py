"""One language's classifier: the encoders its head reads (run chunk by chunk), the head, its
calibration for strangers, and the heads that every language shares: arousal, and the gate that
tells speech from music (the VAD takes some music for speech; the encoders hear the difference)."""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from ..bundle import Bundle, HeadFormat
from ..errors import RtserError
from .calibration import Calibration
from .features import ChunkEncoder
from .heads import NumpyHead, pool
from .sessions import session


class Scores(NamedTuple):
    """What a span of speech gets: calibrated class probabilities, arousal in [0, 1] (None when
    the bundle has no arousal head), and whether the speech gate hears speech in it (music: no
    label)."""

    probs: np.ndarray
    arousal: float | None
    speech: bool = True


class Classifier:
    """``lang`` of ``bundle`` (None: its only language): ``scores(features)`` of a span.

    ``threads``: onnxruntime's intra-op threads per call; ``spinning``: whether idle threads spin
    (see ``sessions.session``)."""

    def __init__(self, bundle: Bundle, lang: str | None, threads: int = 1, spinning: bool = False):
        language = bundle.language(lang)
        self.lang, self.labels = language.code, language.labels
        self.calibration = Calibration.from_spec(language.calibration, self.labels)
        if language.head_format is HeadFormat.NUMPY:
            self.head = NumpyHead.load(language.head)
            self.inputs = self.head.inputs
        else:
            self.head = session(language.head, threads, spinning)
            self.inputs = [i.name for i in self.head.get_inputs()]
        arousal = bundle.arousal_head()
        self.arousal = NumpyHead.load(arousal) if arousal else None
        gate = bundle.speech_gate()
        self.gate = NumpyHead.load(gate.head) if gate else None
        self.gate_threshold = gate.threshold if gate else 0.0
        owner = language.bundle  # an overlay's head reads the encoders its base ships
        shared = [h for h in (self.arousal, self.gate) if h is not None]
        names = set(self.inputs).union(*(h.inputs for h in shared))
        sessions = {name: session(owner.encoder(name), threads, spinning) for name in sorted(names)}
        self.encoder = ChunkEncoder(sessions)

    def scores(self, features: dict[str, np.ndarray]) -> Scores:
        """Calibrated probabilities and arousal of a span's features
        (``features.FeatureTrack.features``)."""
        pooled = {name: pool(x)[None] for name, x in features.items()}  # once for numpy heads
        if isinstance(self.head, NumpyHead):
            raw = self.head.probs(pooled)[0]
        else:
            raw = self.head.run(None, {name: features[name] for name in self.inputs})[0]
        probs = self.calibration.probs(raw.astype(np.float64))
        arousal = None if self.arousal is None else float(self.arousal.probs(pooled)[0, 1])
        speech = self.gate is None or self.gate.probs(pooled)[0, 1] > self.gate_threshold
        if not (np.all(np.isfinite(probs)) and (arousal is None or np.isfinite(arousal))):
            # never hand out NaN: that is a bug, not an answer
            raise RtserError(
                f"the {self.lang} head gave non-finite probabilities; please report this "
                "with the audio (RTSER_DEBUG=1)"
            )
        return Scores(probs, arousal, bool(speech))

    def shifted(self, offset: np.ndarray | None) -> Classifier:
        """This classifier with a site's ``offset`` taken from its calibrated log-probabilities
        (``site.SiteBaseline.offset``); the encoders and heads are shared."""
        if offset is None:
            return self
        other = copy.copy(self)
        other.calibration = self.calibration.shifted(offset)
        return other

    def label(self, probs: np.ndarray) -> str:
        """The label shown for calibrated probabilities (``Calibration.label``)."""
        return self.calibration.label(probs)
