"""Voice activity: per-frame speech scores (Silero VAD in onnxruntime, or webrtcvad) and the
segmenter that turns them into speech segments, with hysteresis, minimum speech / silence, padding
and a maximum length cut at the quietest frame. Times are in samples at 16 kHz from the start of
the stream."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webrtcvad

from .encoders import session
from .errors import RtserError
from .frontend import SAMPLE_RATE

SILERO, WEBRTC = "silero", "webrtc"
SILERO_FRAME = 512     # samples per Silero VAD step at 16 kHz (32 ms)
SILERO_CONTEXT = 64    # samples of the previous step that Silero VAD reads with each step
MAX_BLOCK = 512        # frames scored in one call (16 s at most)
CUT_SEARCH_S = 2.0     # a max-length cut falls on the quietest frame of the segment's last 2 s
CANDIDATE_SILENCE_MS = 320  # a pause this long drops speech that has not yet opened a segment ...
SHORT_SEGMENT_S = 1.0       # ... and closes a segment holding less speech than this (a first word)


@dataclass(frozen=True)
class VadConfig:
    """How speech is found. ``kind``: ``"silero"`` (the default: a neural VAD that tells speech from
    line noise, tones and music, shipped in the bundle) or ``"webrtc"`` (webrtcvad: cheaper, flags
    most non-silence as speech). Defaults chosen with ``bench/calls.py`` (docs/benchmarks.md)."""
    kind: str = SILERO
    threshold: float = 0.5        # silero: a frame with this speech probability or more is speech ...
    neg_threshold: float = 0.5    # ... and inside a segment, speech lasts while it stays at or above this
    aggressiveness: int = 2       # webrtc: 0 (keeps most) .. 3 (drops most)
    frame_ms: int = 30            # webrtc: 10, 20 or 30 (silero's frame is fixed at 32 ms)
    min_speech_ms: int = 150      # speech this long opens a segment
    min_silence_ms: int = 128     # non-speech this long closes it
    pad_ms: int = 200             # audio context the model gets before a segment ...
    post_pad_ms: int = 64         # ... and after it (at most min_silence_ms: all there is at the close)
    max_segment_s: float = 15.0   # longer speech is cut into segments of at most this length

    def __post_init__(self):
        if self.kind not in (SILERO, WEBRTC):
            raise RtserError(f"VAD must be {SILERO!r} or {WEBRTC!r}, not {self.kind!r}")
        if self.frame_ms not in (10, 20, 30):
            raise RtserError(f"VAD frame length must be 10, 20 or 30 ms, not {self.frame_ms}")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise RtserError(f"VAD aggressiveness must be 0-3, not {self.aggressiveness}")
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise RtserError(f"need 0 < neg_threshold ({self.neg_threshold}) <= threshold ({self.threshold}) < 1")
        if not self.max_segment_s * 1000 >= self.min_speech_ms > 0:
            raise RtserError(f"need 0 < min_speech_ms ({self.min_speech_ms}) <= max_segment_s "
                             f"({self.max_segment_s}) * 1000")

    @classmethod
    def named(cls, name: str) -> "VadConfig":
        """The CLI's ``--vad`` values: ``silero``, ``webrtc``, or ``0``-``3`` (webrtc at that aggressiveness)."""
        if name == SILERO:
            return cls()
        if name == WEBRTC or name in ("0", "1", "2", "3"):
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
        return min(self.post_pad_ms * SAMPLE_RATE // 1000, self.frames(self.min_silence_ms) * self.frame)


def energy(frame: np.ndarray) -> float:
    """A frame's mean square."""
    return float(np.dot(frame, frame)) / len(frame)


class WebrtcDetector:
    """webrtcvad's decision for each frame, as a score of 0 or 1."""

    def __init__(self, aggressiveness: int):
        self.vad = webrtcvad.Vad(aggressiveness)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
        return np.array([float(self.vad.is_speech(f.tobytes(), SAMPLE_RATE)) for f in pcm], np.float32)


class SileroDetector:
    """Silero VAD's speech probability for each 512-sample frame, a block of frames per call (the
    wheel's sequence graph: bit-exact with its per-frame graph, without a Python call per frame).
    The onnxruntime session is shared (it is stateless); each detector carries its own recurrent
    state and the context the next frame is read with."""

    def __init__(self, session):
        self.session = session
        self.h = np.zeros((1, 1, 128), np.float32)
        self.c = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(SILERO_CONTEXT, np.float32)  # the previous frame's last samples

    def scores(self, frames: np.ndarray) -> np.ndarray:
        x = np.empty((len(frames), SILERO_CONTEXT + SILERO_FRAME), np.float32)
        x[:, SILERO_CONTEXT:] = frames
        x[0, :SILERO_CONTEXT] = self.context
        x[1:, :SILERO_CONTEXT] = frames[:-1, -SILERO_CONTEXT:]
        self.context = x[-1, -SILERO_CONTEXT:].copy()
        probs, self.h, self.c = self.session.run(None, {"input": x, "h": self.h, "c": self.c})
        return probs


class Vad:
    """A ``VadConfig`` with its model: a ``Segmenter`` per channel, and a clip's speech span."""

    def __init__(self, config: VadConfig, model: Path | None = None):
        self.config = config
        self.session = None
        if config.kind == SILERO:
            if model is None:
                raise RtserError("the silero VAD needs its model file (a bundle's vad_model('silero'))")
            self.session = session(model)
            if [i.name for i in self.session.get_inputs()] != ["input", "h", "c"]:
                raise RtserError(f"{model}: not Silero VAD's sequence graph (an older bundle?); "
                                 "rebuild the bundle's VAD with python -m export.vad")

    def detector(self):
        return SileroDetector(self.session) if self.session else WebrtcDetector(self.config.aggressiveness)

    def segmenter(self) -> "Segmenter":
        return Segmenter(self.config)

    def lead(self) -> int:
        """Whole frames of silence a clip or stream is primed with (they keep the frame grid on sample 0)."""
        return -(-self.config.pad // self.config.frame) * self.config.frame

    def speech_bounds(self, audio: np.ndarray) -> tuple[int, int] | None:
        """Where a stream's segment event would cut a 16 kHz clip that stood between silences: first
        speech start to last speech end, ``pad`` earlier and ``post_pad`` later (samples of the clip;
        beyond its edges when the speech reaches them). None when there is no speech."""
        cfg, lead = self.config, self.lead()
        frame, pad = cfg.frame, cfg.pad
        x = np.pad(np.asarray(audio, np.float32), (lead, pad + frame))
        frames = x[: len(x) // frame * frame].reshape(-1, frame)
        detector, seg, bounds = self.detector(), self.segmenter(), []
        scores = np.concatenate([detector.scores(frames[i:i + MAX_BLOCK]) for i in range(0, len(frames), MAX_BLOCK)])
        for i, (f, score) in enumerate(zip(frames, scores)):
            bounds += [at for _, at in seg.decide(float(score), i * frame, frame, energy(f))]
        bounds += [at for _, at in seg.finish(len(x))]
        return (bounds[0] - pad - lead, bounds[-1] + cfg.post_pad - lead) if bounds else None

    def labelled_span(self, audio: np.ndarray) -> tuple[int, int]:
        """Where a clip labelled as speech is classified (enrolment, training): ``speech_bounds``
        within the clip, or the whole clip when the VAD finds no speech in it."""
        bounds = self.speech_bounds(audio)
        return (max(0, bounds[0]), min(len(audio), bounds[1])) if bounds else (0, len(audio))


class Segmenter:
    """Feed each frame's speech score to ``decide``; it returns the changes ``("start", sample)`` /
    ``("end", sample)``.

    A frame scoring ``threshold`` or more starts a candidate; it stays speech while frames score
    ``neg_threshold`` or more. The candidate becomes a segment (a retroactive ``start``) once its
    speech spans ``min_speech_ms``, and until then survives pauses of up to ``CANDIDATE_SILENCE_MS``;
    a pause of ``min_silence_ms`` ends a segment where its speech ended, once it holds
    ``SHORT_SEGMENT_S`` of speech (a shorter one, like a candidate, waits ``CANDIDATE_SILENCE_MS``). So a segment never ends where
    it starts, and none is longer than ``max_segment_s``."""

    def __init__(self, config: VadConfig):
        self.cfg = config
        self.active = False     # a candidate or a segment is open
        self.opened = False     # ... and it has been announced with "start"
        self.start = 0          # sample where it began
        self.run = 0            # consecutive non-speech frames at its end
        self.last_speech_end = 0
        self.min_speech = config.min_speech_ms * SAMPLE_RATE // 1000
        self.short = int(SHORT_SEGMENT_S * SAMPLE_RATE)
        self.max_frames = config.frames(config.max_segment_s * 1000)
        self.recent: list[tuple[int, int, float, bool]] = []  # its frames: start, end, energy, speech

    def decide(self, score: float, frame_start: int, frame_len: int, energy: float = 0.0,
               mute: bool = False) -> list[tuple[str, int]]:
        """``energy``: the frame's mean square (for a max-length cut). ``mute``: the frame is not this
        channel's speech whatever its score (the other side's voice leaking in)."""
        if mute:
            if self.active and not self.opened:  # a candidate the other side's voice runs through
                self.active, self.recent = False, []
            score = 0.0
        cfg, end = self.cfg, frame_start + frame_len
        if not self.active:
            if score < cfg.threshold:
                return []
            self.active, self.opened, self.start, self.run, self.last_speech_end = True, False, frame_start, 0, end
            self.recent = [(frame_start, end, energy, True)]
            return self._open_when_long_enough()
        speech = score >= cfg.neg_threshold
        self.recent.append((frame_start, end, energy, speech))
        if speech:
            self.run, self.last_speech_end = 0, end
        else:
            self.run += 1
        if self.run >= self.closing_frames():
            was_open = self.opened
            self.active = self.opened = False
            self.run = 0
            self.recent = []
            return [("end", self.last_speech_end)] if was_open else []
        if not self.opened:
            return self._open_when_long_enough()
        if (end - self.start) // cfg.frame >= self.max_frames:
            return self._cut()
        return []

    def _open_when_long_enough(self) -> list[tuple[str, int]]:
        if self.last_speech_end - self.start < self.min_speech:
            return []
        self.opened = True
        return [("start", self.start)]

    def _cut(self) -> list[tuple[str, int]]:
        """At the length limit: end the segment at the quietest frame of its last ``CUT_SEARCH_S``;
        the speech after that frame opens the next segment (none when no speech follows it)."""
        search = [f for f in self.recent[-self.cfg.frames(CUT_SEARCH_S * 1000):] if f[0] > self.start]
        if not search:
            search = self.recent[-1:]
        quiet = min(range(len(search)), key=lambda i: (search[i][2], -i))
        cut = search[quiet][0]
        before = [f for f in self.recent if f[0] < cut and f[3]]
        after = [f for f in self.recent if f[0] >= cut and f[3]]
        changes = [("end", before[-1][1] if before else cut)]
        if after:
            self.start = after[0][0]
            self.recent = [f for f in self.recent if f[0] >= self.start]
            changes.append(("start", self.start))
        else:
            self.active = self.opened = False
            self.run = 0
            self.recent = []
        return changes

    def closing_frames(self) -> int:
        """Non-speech frames that close what is open: ``min_silence_ms``; a candidate, or a segment
        of less than SHORT_SEGMENT_S of speech, waits longer, so a first word and its pause join the
        speech after it."""
        cfg = self.cfg
        quick = self.opened and self.last_speech_end - self.start >= self.short
        return cfg.frames(cfg.min_silence_ms if quick else max(cfg.min_silence_ms, CANDIDATE_SILENCE_MS))

    def speech_end(self, now: int) -> int:
        """Where the open segment's speech ends so far: ``now``, or the start of a trailing pause."""
        return self.last_speech_end if self.run else now

    def finish(self, stream_end: int) -> list[tuple[str, int]]:
        was_open = self.opened
        self.active = self.opened = False
        return [("end", self.last_speech_end if self.run else stream_end)] if was_open else []
