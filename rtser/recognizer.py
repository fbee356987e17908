"""The Python API: ``Recognizer(lang="it").predict(samples, sample_rate)`` and ``.stream(...)``."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .audio import AudioFile, as_float, check_sample_rate
from .bundle import Bundle
from .chunks import CHUNK, clip_features
from .errors import RtserError
from .events import Event, Prediction
from .frontend import SAMPLE_RATE
from .model import Classifier
from .resample import resample
from .stream import StreamSession
from .vad import SILERO, Vad, VadConfig


class Recognizer:
    """Emotion recognizer for one language of a bundle (the shipped one unless ``bundle=``)."""

    def __init__(self, lang: str | None = None, bundle: str | Path | Bundle | None = None,
                 threads: int = 1, window_s: float | None = None, hop_s: float | None = None,
                 vad: VadConfig | None = None):
        if not (isinstance(threads, int) and threads >= 1):
            raise RtserError(f"threads must be a whole number >= 1, not {threads!r}")
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        self.classifier = Classifier(self.bundle, lang, threads)
        self.lang, self.labels = self.classifier.lang, self.classifier.labels
        self.window_s = window_s or self.bundle.manifest["window_s"]
        self.hop_s = hop_s or self.bundle.manifest["hop_s"]
        if not 0 < self.hop_s <= self.window_s <= 30:
            raise RtserError(f"need 0 < hop ({self.hop_s}) <= window ({self.window_s}) <= 30 seconds")
        if self.hop_s * SAMPLE_RATE % CHUNK:
            raise RtserError(f"the hop ({self.hop_s} s) must be a whole number of {CHUNK // SAMPLE_RATE} s feature chunks")
        config = vad or VadConfig()
        self.vad = Vad(config, self.bundle.vad_model(config.kind) if config.kind == SILERO else None)

    def predict(self, samples, sample_rate: int = SAMPLE_RATE) -> Prediction:
        """Label a whole clip (mono or multi-channel, any rate): one label for the clip's speech,
        from its first to its last VAD speech frame (plus the VAD padding). A stream gives the same
        label in its segment event when the clip is one segment (no pause of ``min_silence_ms``).
        A clip without speech gives ``Prediction(label=None, probs={})``."""
        rate = check_sample_rate(sample_rate)
        x = as_float(samples).mean(axis=1)
        if len(x) == 0:
            raise RtserError("the clip is empty")
        audio = resample(x, rate, SAMPLE_RATE)
        bounds = self.vad.speech_bounds(audio)
        if bounds is None:  # tones, music, noise: no speech, no emotion
            return Prediction(None, {})
        probs = self.classifier.probs(clip_features(self.classifier.encoder, audio, *bounds))
        return Prediction(self.labels[int(np.argmax(probs))], {k: float(p) for k, p in zip(self.labels, probs)})

    def stream(self, sample_rate: int = SAMPLE_RATE, channels: int = 1, split: bool = False,
               callback: Callable[[Event], None] | None = None) -> StreamSession:
        """A live session: ``push(samples or 16-bit PCM bytes) -> [Event]``, then ``close()``."""
        return StreamSession(self.classifier, self.vad, sample_rate, channels, split, self.window_s, self.hop_s,
                             callback)

    def file(self, path: str | Path, split: bool = False,
             on_block: Callable[[np.ndarray, AudioFile], None] | None = None) -> Iterator[Event]:
        """Events of a recording, decoded block by block (a long call never sits in memory);
        ``on_block(block, audio_file)`` sees every raw block (progress bars, plots)."""
        with AudioFile(path) as f:
            session = self.stream(f.sample_rate, f.channels, split)
            for block in f.blocks(1.0):
                yield from session.push(block)
                if on_block:
                    on_block(block, f)
            yield from session.close()
