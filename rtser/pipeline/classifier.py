"""One language's classifier: the encoders its head reads (run chunk by chunk), then the head."""

from __future__ import annotations

import numpy as np

from ..bundle import Bundle, HeadFormat
from ..errors import RtserError
from .features import ChunkEncoder
from .heads import NumpyHead
from .sessions import session


class Classifier:
    """``lang`` of ``bundle`` (None: its only language): ``probs(features)`` of a span.

    ``threads``: onnxruntime's intra-op threads per call; ``spinning``: whether idle threads spin
    (see ``sessions.session``)."""

    def __init__(self, bundle: Bundle, lang: str | None, threads: int = 1, spinning: bool = False):
        language = bundle.language(lang)
        self.lang, self.labels = language.code, language.labels
        if language.head_format is HeadFormat.NUMPY:
            self.head = NumpyHead.load(language.head)
            self.inputs = self.head.inputs
        else:
            self.head = session(language.head, threads, spinning)
            self.inputs = [i.name for i in self.head.get_inputs()]
        owner = language.bundle  # an overlay's head reads the encoders its base ships
        sessions = {name: session(owner.encoder(name), threads, spinning) for name in self.inputs}
        self.encoder = ChunkEncoder(sessions)

    def probs(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities of a span's features (``features.FeatureTrack.features``)."""
        feeds = {name: features[name] for name in self.inputs}
        probs = self.head.run(None, feeds)[0].astype(np.float64)
        if not np.all(np.isfinite(probs)):  # never hand out NaN: that is a bug, not an answer
            raise RtserError(
                f"the {self.lang} head gave non-finite probabilities; please report this with the "
                "audio (RTSER_DEBUG=1)"
            )
        return probs
