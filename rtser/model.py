"""One language's classifier: the encoders its head reads (run chunk by chunk), then the head."""
from __future__ import annotations

import numpy as np

from .bundle import Bundle
from .chunks import ChunkEncoder
from .encoders import session
from .errors import RtserError
from .head import NumpyHead


class Classifier:
    def __init__(self, bundle: Bundle, lang: str | None, threads: int = 1, spinning: bool = False):
        spec = bundle.language(lang)
        self.lang, self.labels = spec["lang"], list(spec["labels"])
        owner: Bundle = spec["bundle"]
        path = owner.file(spec["head"])
        if path.suffix == ".npz":  # enrolled language (rtser enroll)
            self.head = NumpyHead.load(path)
            self.inputs = self.head.inputs
        else:
            self.head = session(path, threads, spinning)
            self.inputs = [i.name for i in self.head.get_inputs()]
        self.encoder = ChunkEncoder({name: session(owner.encoder(name), threads, spinning) for name in self.inputs})

    def probs(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities of a span's features (``chunks.FeatureTrack.features``)."""
        probs = self.head.run(None, {name: features[name] for name in self.inputs})[0].astype(np.float64)
        if not np.all(np.isfinite(probs)):  # never hand out NaN: that is a bug, not an answer
            raise RtserError(f"the {self.lang} head gave non-finite probabilities; please report this "
                             "with the audio (RTSER_DEBUG=1)")
        return probs
