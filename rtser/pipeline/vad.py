"""Voice activity: how speech is found (``VadConfig``), per-frame speech scores (Silero VAD in
onnxruntime, or webrtcvad, on a line with a noise floor), and a clip's speech span.
``segmenter`` turns the scores of a stream into segments. Times are in samples at 16 kHz from the
start of the stream."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np
import webrtcvad

from ..audio import SAMPLE_RATE
from ..errors import RtserError
from .segmenter import Segmenter
from .sessions import session


class VadKind(str, Enum):
    SILERO = "silero"  # a neural VAD that tells speech from line noise, tones and music
    WEBRTC = "webrtc"  # cheaper; flags most non-silence as speech


SILERO, WEBRTC = VadKind.SILERO, VadKind.WEBRTC
SILERO_FRAME = 512  # samples per Silero VAD step at 16 kHz (32 ms)
SILERO_CONTEXT = 64  # samples of the previous step that Silero VAD reads with each step
MAX_BLOCK = 512  # frames scored in one call (16 s at most)
# The second opinion on loud voiced frames: Silero scores some shouted or screamed speech low (more
# so through G.711), so a frame still counts as speech when it is loud, periodic at a voice's pitch
# and not a few pure tones (dial tones, DTMF), and so was the frame before it (a tone's edges are
# neither pure nor lasting), if Silero does not rule it out (SILERO_FLOOR or more) or it ends a
# stretch of LOUD_WINDOW frames, LOUD_RUN of them such frames, that Silero scores RUN_FLOOR or more
# (a shout it scores near 0 all along; a scream's pitch breaks, so a frame or two of the stretch
# may fail; without RUN_FLOOR most loud music passes the VAD, and only the speech gate stops it).
# Set on RAVDESS's shouted and screamed clips that Silero loses (a screamed voice's pitch reaches
# 500-600 Hz) and on sim/calls.py's non-speech (tones, DTMF, music at -10 to -30 dBFS, hum, noise),
# clean and through μ-law; bench/calls.py measures the clips each way loses, and the segments
# Asterisk's hold music opens with and without the speech gate.
LOUD_DBFS = -40.0  # frame level
SILERO_FLOOR = 0.1
LOUD_RUN = 8  # loud voiced frames ...
LOUD_WINDOW = 10  # ... among the last 10 (320 ms)
RUN_FLOOR = 0.02
VOICED = 0.4  # normalised autocorrelation at the best lag of a 70-600 Hz pitch
TONAL = 0.97  # share of the frame's power (250-3400 Hz) in its 6 strongest bins: pure tones
PITCH_LAGS = np.arange(SAMPLE_RATE // 600, SAMPLE_RATE // 70 + 1)
VOICE_BAND = slice(8, 110)  # the 512-point spectrum's bins from 250 to 3400 Hz
HANN = np.hanning(SILERO_FRAME - 1)  # of a pre-emphasised frame
FLOOR_S = 5.0  # a line's noise floor: its quietest frame of the last 5 s (digital silence left out)


class Span(NamedTuple):
    """Samples ``[start, end)``."""

    start: int
    end: int


@dataclass(frozen=True)
class VadConfig:
    """How speech is found. ``kind``: ``"silero"`` (the default: a neural VAD that tells speech from
    line noise, tones and music, shipped in the bundle, with a second opinion on loud voiced
    frames) or ``"webrtc"`` (webrtcvad: cheaper, flags most non-silence as speech). Defaults chosen
    with ``bench/calls.py`` (docs/benchmarks.md)."""

    kind: VadKind = SILERO
    threshold: float = 0.5  # silero: a frame with this speech probability or more is speech ...
    neg_threshold: float = (
        0.5  # ... and inside a segment, speech lasts while it stays at or above this
    )
    aggressiveness: int = 2  # webrtc: 0 (keeps most) .. 3 (drops most)
    frame_ms: int = 30  # webrtc: 10, 20 or 30 (silero's frame is fixed at 32 ms)
    min_speech_ms: int = 150  # speech this long opens a segment
    min_silence_ms: int = 128  # non-speech this long closes it
    pad_ms: int = 200  # audio context the model gets before a segment ...
    post_pad_ms: int = 64  # ... and after it (at most min_silence_ms: all there is at the close)
    max_segment_s: float = 15.0  # longer speech is cut into segments of at most this length
    second_opinion: bool = True  # silero: loud voiced frames it scores low still count as speech
    # a frame within this many dB of the line's noise floor is not speech, whatever Silero's
    # memory of the speech before it says (0: off): segments close sooner after speech, most on
    # steady noise, where at 10 dB SNR it also cuts soft speech off (bench/calls.py)
    floor_db: float = 1.5

    def __post_init__(self):
        try:
            object.__setattr__(self, "kind", VadKind(self.kind))
        except ValueError:
            raise RtserError(f"VAD must be 'silero' or 'webrtc', not {self.kind!r}") from None
        if self.frame_ms not in (10, 20, 30):
            raise RtserError(f"VAD frame length must be 10, 20 or 30 ms, not {self.frame_ms}")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise RtserError(f"VAD aggressiveness must be 0-3, not {self.aggressiveness}")
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise RtserError(
                f"need 0 < neg_threshold ({self.neg_threshold}) <= threshold ({self.threshold}) < 1"
            )
        if self.floor_db < 0:
            raise RtserError(f"floor_db must be 0 (off) or more, not {self.floor_db}")
        if not self.max_segment_s * 1000 >= self.min_speech_ms > 0:
            raise RtserError(
                f"need 0 < min_speech_ms ({self.min_speech_ms}) <= max_segment_s "
                f"({self.max_segment_s}) * 1000"
            )

    @classmethod
    def named(cls, name: str) -> VadConfig:
        """The CLI's ``--vad`` values: ``silero``, ``webrtc``, or ``0``-``3`` (webrtc at that
        aggressiveness)."""
        if name == SILERO.value:
            return cls()
        if name == WEBRTC.value or name in ("0", "1", "2", "3"):
            return cls(kind=WEBRTC, aggressiveness=int(name) if name.isdigit() else 2)
        raise RtserError(f"--vad must be silero, webrtc or 0-3, not {name!r}")

    @property
    def frame(self) -> int:
        return SILERO_FRAME if self.kind == SILERO else SAMPLE_RATE * self.frame_ms // 1000

    def frames(self, ms: float) -> int:
        return max(1, int(round(ms * SAMPLE_RATE / 1000 / self.frame)))

    @property
    def pad(self) -> int:
        return self.pad_ms * SAMPLE_RATE // 1000

    @property
    def post_pad(self) -> int:
        """Context after a segment's speech: ``post_pad_ms``, no more than the closing silence."""
        return min(
            self.post_pad_ms * SAMPLE_RATE // 1000, self.frames(self.min_silence_ms) * self.frame
        )


class WebrtcDetector:
    """webrtcvad's decision for each frame, as a score of 0 or 1."""

    def __init__(self, aggressiveness: int):
        self.vad = webrtcvad.Vad(aggressiveness)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
        return np.array(
            [float(self.vad.is_speech(f.tobytes(), SAMPLE_RATE)) for f in pcm], np.float32
        )


def loud_voiced(frames: np.ndarray) -> np.ndarray:
    """Which frames (rows of 512 samples at 16 kHz) are loud, voiced and not pure tones: the
    second opinion, for the frames Silero scores below its threshold."""
    x = frames.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    power = np.einsum("ij,ij->i", x, x)
    out = 10 * np.log10(power / x.shape[1] + 1e-12) > LOUD_DBFS
    if not out.any():
        return out
    x = np.diff(x[out], axis=1)  # pre-emphasis: rumble (brown noise) is not a voice's pitch
    # autocorrelation at each pitch lag, normalised by the energies of the overlapping parts
    lagged = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * x.shape[1])) ** 2)[:, PITCH_LAGS]
    head = np.cumsum(x**2, axis=1)
    tail = head[:, -1:] - np.concatenate([np.zeros((len(x), 1)), head[:, :-1]], axis=1)
    overlap = np.sqrt(head[:, -1 - PITCH_LAGS] * tail[:, PITCH_LAGS])
    periodic = (lagged / (overlap + 1e-12)).max(axis=1) > VOICED
    spectrum = np.abs(np.fft.rfft(x * HANN, axis=1))[:, VOICE_BAND] ** 2
    strongest = -np.partition(-spectrum, 6, axis=1)[:, :6].sum(axis=1)
    tonal = strongest > TONAL * spectrum.sum(axis=1)
    out[out] = periodic & ~tonal
    return out


class SileroDetector:
    """Silero VAD's speech probability for each 512-sample frame, a block of frames per call (the
    wheel's sequence graph: bit-exact with its per-frame graph, without a Python call per frame).
    The onnxruntime session is shared (it is stateless); each detector carries its own recurrent
    state and the context the next frame is read with."""

    def __init__(self, session, threshold: float | None = None):
        self.session, self.threshold = session, threshold  # None: Silero's scores alone
        self.h = np.zeros((1, 1, 128), np.float32)
        self.c = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(SILERO_CONTEXT, np.float32)  # the previous frame's last samples
        self.voiced = False  # whether the previous frame was speech or a second-opinion candidate
        self.recent = np.zeros(LOUD_WINDOW - 1, bool)  # the last frames' loud voiced flags

    def scores(self, frames: np.ndarray) -> np.ndarray:
        x = np.empty((len(frames), SILERO_CONTEXT + SILERO_FRAME), np.float32)
        x[:, SILERO_CONTEXT:] = frames
        x[0, :SILERO_CONTEXT] = self.context
        x[1:, :SILERO_CONTEXT] = frames[:-1, -SILERO_CONTEXT:]
        self.context = x[-1, -SILERO_CONTEXT:].copy()
        probs, self.h, self.c = self.session.run(None, {"input": x, "h": self.h, "c": self.c})
        probs = probs.reshape(-1)
        if self.threshold is None:
            return probs
        sure = probs >= self.threshold
        unsure = np.flatnonzero((probs >= RUN_FLOOR) & ~sure)  # what a second opinion may move
        if not len(unsure):  # most blocks: speech or silence Silero is sure of
            self.recent[:], self.voiced = False, bool(sure[-1])
            return probs
        voiced = np.zeros(len(probs), bool)
        voiced[unsure] = loud_voiced(frames[unsure])
        # how many of the LOUD_WINDOW frames each frame ends are loud voiced (carried across blocks)
        flags = np.concatenate([self.recent, voiced])
        total = np.concatenate([[0], np.cumsum(flags)])
        loud = total[LOUD_WINDOW:] - total[: len(voiced)]
        self.recent = flags[len(voiced) :]
        candidate = sure | (voiced & ((probs >= SILERO_FLOOR) | (loud >= LOUD_RUN)))
        before = np.concatenate([[self.voiced], candidate[:-1]])
        probs[candidate & before & ~sure] = 1.0
        self.voiced = bool(candidate[-1])
        return probs


class LineDetector:
    """A detector's scores on a line with a noise floor: the quietest frame energy of the last
    ``FLOOR_S``. ``energies`` (mean squares) and ``above`` (over the floor) are those of the frames
    last scored: the stream's echo test compares each side's energy above its floor. With
    ``floor_db``, a frame within that of the floor scores 0: Silero goes on scoring the frames
    after speech as speech for a while, longest in steady noise."""

    def __init__(self, inner, floor_db: float, frame: int):
        self.inner = inner
        self.ratio = 10 ** (floor_db / 10) if floor_db > 0 else 0.0
        self.recent: deque[float] = deque(maxlen=round(FLOOR_S * SAMPLE_RATE / frame))
        self.energies = self.above = np.zeros(0)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        probs = self.inner.scores(frames)
        energies = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frames.shape[1]
        floors = np.empty(len(frames))
        for i, e in enumerate(energies):
            if e > 0:  # digital silence (the priming around a clip) is no line's noise
                self.recent.append(e)
            floors[i] = min(self.recent, default=0.0)
        if self.ratio:
            probs[energies <= floors * self.ratio] = 0.0
        self.energies, self.above = energies, energies - floors
        return probs


class Vad:
    """A ``VadConfig`` with its model: a ``Segmenter`` per channel, and a clip's speech span."""

    def __init__(self, config: VadConfig, model: Path | None = None):
        self.config = config
        self.session = None
        if config.kind == SILERO:
            if model is None:
                raise RtserError(
                    "the silero VAD needs its model file (a bundle's vad_model('silero'))"
                )
            self.session = session(model)
            if [i.name for i in self.session.get_inputs()] != ["input", "h", "c"]:
                raise RtserError(
                    f"{model}: not Silero VAD's sequence graph (an older bundle?); rebuild the "
                    "bundle's VAD with python -m export.vad"
                )

    def detector(self) -> LineDetector:
        cfg = self.config
        inner = (
            SileroDetector(self.session, cfg.threshold if cfg.second_opinion else None)
            if self.session
            else WebrtcDetector(cfg.aggressiveness)
        )
        return LineDetector(inner, cfg.floor_db, cfg.frame)

    def segmenter(self) -> Segmenter:
        return Segmenter(self.config)

    def priming(self) -> int:
        """Whole frames of silence a clip or stream is primed with (they keep the frame grid on
        sample 0)."""
        return -(-self.config.pad // self.config.frame) * self.config.frame

    def speech_bounds(self, audio: np.ndarray) -> Span | None:
        """Where a stream's segment event would cut a 16 kHz clip that stood between silences: first
        speech start to last speech end, ``pad`` earlier and ``post_pad`` later (samples of the
        clip; beyond its edges when the speech reaches them). None when there is no speech."""
        cfg, priming = self.config, self.priming()
        frame, pad = cfg.frame, cfg.pad
        x = np.pad(np.asarray(audio, np.float32), (priming, pad + frame))
        frames = x[: len(x) // frame * frame].reshape(-1, frame)
        detector, segmenter, bounds = self.detector(), self.segmenter(), []
        blocks = range(0, len(frames), MAX_BLOCK)
        scores, energies = [], []
        for i in blocks:
            scores.append(detector.scores(frames[i : i + MAX_BLOCK]))
            energies.append(detector.energies)
        for i, (score, e) in enumerate(zip(np.concatenate(scores), np.concatenate(energies))):
            bounds += [b.at for b in segmenter.decide(float(score), i * frame, frame, float(e))]
        bounds += [b.at for b in segmenter.finish(len(x))]
        if not bounds:
            return None
        return Span(bounds[0] - pad - priming, bounds[-1] + cfg.post_pad - priming)

    def labelled_span(self, audio: np.ndarray) -> Span:
        """Where a clip labelled as speech is classified (enrolment, training): ``speech_bounds``
        within the clip, or the whole clip when the VAD finds no speech in it."""
        bounds = self.speech_bounds(audio)
        if bounds is None:
            return Span(0, len(audio))
        return Span(max(0, bounds.start), min(len(audio), bounds.end))
