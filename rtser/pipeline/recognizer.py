"""The Python API: ``Recognizer(lang="it").predict(samples, sample_rate)``, ``.stream(...)`` and
``.file(path)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioFile, AudioInfo, as_float, check_sample_rate, resample
from ..bundle import Bundle
from ..errors import RtserError
from .classifier import Classifier
from .events import Event, Prediction
from .features import CHUNK, clip_features
from .site import Site
from .stream import StreamSession
from .vad import SILERO, Vad, VadConfig


class Recognizer:
    """Emotion recognizer for one language of a bundle.

    Parameters:
        lang: a language of the bundle (``rtser info``); None when the bundle holds one.
        bundle: a bundle folder or ``Bundle``; None for the one shipped with rtser.
        threads: onnxruntime threads per inference call (1 is fastest for one stream).
        window_s: rolling labels read the last ``window_s`` seconds of a segment (default: the
            bundle's, 3 s) ...
        hop_s: ... every ``hop_s`` seconds, a whole number of 2 s chunks (default: the bundle's, 2
        s).
        vad: how speech is found (default ``VadConfig()``: Silero VAD).
        site: the site's running baseline (``Site``): every stream and prediction is labelled
            with what the site heard before it taken out, and every stream's final turns teach it
            when the stream closes. None (the default): each clip and stream on its own.

    >>> rec = Recognizer(lang="de")
    >>> rec.predict(samples, 16000).label
    'anger'
    >>> events, info = rec.file("call.wav", split=True)
    >>> for e in events:
    ...     print(e.start, e.end, e.label)
    """

    def __init__(
        self,
        lang: str | None = None,
        bundle: str | Path | Bundle | None = None,
        threads: int = 1,
        window_s: float | None = None,
        hop_s: float | None = None,
        vad: VadConfig | None = None,
        site: Site | None = None,
    ):
        if not (isinstance(threads, int) and threads >= 1):
            raise RtserError(f"threads must be a whole number >= 1, not {threads!r}")
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
        self.classifier = Classifier(self.bundle, lang, threads)
        self.lang, self.labels = self.classifier.lang, self.classifier.labels
        self.window_s = window_s or self.bundle.manifest["window_s"]
        self.hop_s = hop_s or self.bundle.manifest["hop_s"]
        if not 0 < self.hop_s <= self.window_s <= 30:
            raise RtserError(
                f"need 0 < hop ({self.hop_s}) <= window ({self.window_s}) <= 30 seconds"
            )
        if self.hop_s * SAMPLE_RATE % CHUNK:
            raise RtserError(
                f"the hop ({self.hop_s} s) must be a whole number of {CHUNK // SAMPLE_RATE} s "
                "feature chunks"
            )
        self.baseline = site.baseline(self.lang, self.classifier.calibration) if site else None
        config = vad or VadConfig()
        self.vad = Vad(
            config, self.bundle.vad_model(config.kind) if config.kind == SILERO else None
        )

    def predict(self, samples, sample_rate: int = SAMPLE_RATE) -> Prediction:
        """Label a whole clip (mono or multi-channel, any rate): one label for the clip's speech,
        from its first to its last VAD speech frame (plus the VAD padding). A stream gives the same
        label in its turn event when the clip is one turn (no pause of a turn gap inside).
        A clip without speech, or whose speech the bundle's gate hears as music, gives
        ``Prediction(label=None, probs={})``."""
        rate = check_sample_rate(sample_rate)
        x = as_float(samples).mean(axis=1)
        if len(x) == 0:
            raise RtserError("the clip is empty")
        audio = resample(x, rate, SAMPLE_RATE)
        bounds = self.vad.speech_bounds(audio)
        if bounds is None:  # tones, music, noise: no speech, no emotion
            return Prediction(None, {})
        classifier = self.classifier.shifted(self.baseline.offset() if self.baseline else None)
        scores = classifier.scores(clip_features(classifier.encoder, audio, *bounds))
        if not scores.speech:
            return Prediction(None, {})
        probs = {k: float(p) for k, p in zip(self.labels, scores.probs)}
        return Prediction(classifier.label(scores.probs), probs, scores.arousal)

    def stream(
        self,
        sample_rate: int = SAMPLE_RATE,
        channels: int = 1,
        split: bool = False,
        callback: Callable[[Event], None] | None = None,
    ) -> StreamSession:
        """A live session: ``push(samples or 16-bit PCM bytes) -> [Event]``, then ``close()``
        (parameters: ``StreamSession``)."""
        return StreamSession(
            self.classifier,
            self.vad,
            sample_rate,
            channels,
            split,
            self.window_s,
            self.hop_s,
            callback,
            self.baseline,
        )

    def file(
        self,
        path: str | Path,
        split: bool = False,
        on_block: Callable[[np.ndarray], None] | None = None,
    ) -> tuple[Iterator[Event], AudioInfo]:
        """A recording's events, lazily, decoded block by block (a long call never sits in
        memory), and what the file holds (rate, channels, duration). The file is opened and
        checked at once, so a bad file fails here, before any event. ``on_block(block)`` sees every
        raw ``(frames, channels)`` block (progress bars, plots). ``split``: as ``stream``."""
        audio = AudioFile(path)

        def events() -> Iterator[Event]:
            with audio:
                session = self.stream(audio.info.sample_rate, audio.info.channels, split)
                for block in audio.blocks(1.0):
                    yield from session.push(block)
                    if on_block:
                        on_block(block)
                yield from session.close()

        return events(), audio.info
