"""Speech segments from per-frame speech decisions (webrtcvad), with minimum speech / silence
durations and a maximum segment length. Times are in samples at 16 kHz from the start of the stream."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from .errors import RtserError
from .frontend import SAMPLE_RATE


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2       # 0 (keeps most) .. 3 (drops most)
    frame_ms: int = 30            # 10, 20 or 30
    min_speech_ms: int = 150      # speech this long opens a segment
    min_silence_ms: int = 500     # silence this long closes it
    pad_ms: int = 200             # audio context kept before and after a segment for the model
    max_segment_s: float = 15.0   # longer speech is cut into segments of at most this length

    def __post_init__(self):
        if self.frame_ms not in (10, 20, 30):
            raise RtserError(f"VAD frame length must be 10, 20 or 30 ms, not {self.frame_ms}")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise RtserError(f"VAD aggressiveness must be 0-3, not {self.aggressiveness}")
        if not self.max_segment_s * 1000 >= self.min_speech_ms > 0:
            raise RtserError(f"need 0 < min_speech_ms ({self.min_speech_ms}) <= max_segment_s "
                             f"({self.max_segment_s}) * 1000")

    @property
    def frame(self) -> int:
        return SAMPLE_RATE * self.frame_ms // 1000

    def frames(self, ms: float) -> int:
        return max(1, int(round(ms / self.frame_ms)))


class Segmenter:
    """Feed whole frames to ``step`` (or frame decisions to ``decide``); both return the changes
    ``("start", sample)`` / ``("end", sample)``. Every segment holds at least ``min_speech_ms`` of
    speech, so it never ends where it starts."""

    def __init__(self, config: VadConfig):
        self.cfg = config
        self.vad = webrtcvad.Vad(config.aggressiveness)
        self.in_speech = False
        self.start = 0          # sample where the open segment (or the candidate run) began
        self.run = 0            # consecutive frames of the state opposite to the current one
        self.last_speech_end = 0
        self.max_frames = config.frames(config.max_segment_s * 1000)

    def is_speech(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes()
        return self.vad.is_speech(pcm, SAMPLE_RATE)

    def step(self, frame: np.ndarray, frame_start: int) -> list[tuple[str, int]]:
        return self.decide(self.is_speech(frame), frame_start, len(frame))

    def decide(self, speech: bool, frame_start: int, frame_len: int) -> list[tuple[str, int]]:
        cfg, end = self.cfg, frame_start + frame_len
        if not self.in_speech:
            if not speech:
                self.run = 0
                return []
            if self.run == 0:
                self.start = frame_start
            self.run += 1
            if self.run < cfg.frames(cfg.min_speech_ms):
                return []
            self.in_speech, self.run, self.last_speech_end = True, 0, end
            return [("start", self.start)]
        if speech:
            self.run, self.last_speech_end = 0, end
        else:
            self.run += 1
        if self.run >= cfg.frames(cfg.min_silence_ms):
            self.in_speech, self.run = False, 0
            self.vad = webrtcvad.Vad(cfg.aggressiveness)  # each segment's onset: same state as a lone clip's
            return [("end", self.last_speech_end)]
        if (end - self.start) // cfg.frame >= self.max_frames:
            # cut: in a pause, where speech stopped; in speech, here. Speech that goes on opens the
            # next segment (from its first frame) once it has lasted min_speech_ms.
            at = self.last_speech_end if self.run else end
            self.in_speech, self.run = False, 0
            return [("end", at)]
        return []

    def speech_end(self, now: int) -> int:
        """Where the open segment's speech ends so far: ``now``, or the start of a trailing pause."""
        return self.last_speech_end if self.run else now

    def finish(self, stream_end: int) -> list[tuple[str, int]]:
        if not self.in_speech:
            return []
        self.in_speech = False
        return [("end", self.last_speech_end if self.run else stream_end)]


def speech_audio(audio: np.ndarray, config: VadConfig) -> np.ndarray:
    """The part of a 16 kHz clip that a stream's segment event would classify if the clip stood
    between silences, starting on a VAD frame: first speech start to last speech end, plus
    ``pad_ms`` either side (zeros beyond the clip's edges). The whole clip when no speech is found."""
    frame, pad = config.frame, config.pad_ms * SAMPLE_RATE // 1000
    lead = -(-pad // frame) * frame  # whole frames of silence ahead keep the frame grid on the clip
    x = np.pad(np.asarray(audio, np.float32), (lead, pad + frame))
    seg, bounds = Segmenter(config), []
    for start in range(0, len(x) - frame + 1, frame):
        bounds += [at for _, at in seg.step(x[start:start + frame], start)]
    bounds += [at for _, at in seg.finish(len(x))]
    return x[max(0, bounds[0] - pad): bounds[-1] + pad] if bounds else np.asarray(audio, np.float32)
