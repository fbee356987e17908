"""Speech segments from per-frame speech scores: hysteresis, minimum speech and silence, and a
maximum length cut at the quietest frame. Times are in samples at 16 kHz from the stream's start."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from ..audio import SAMPLE_RATE

CUT_SEARCH_S = 2.0  # a max-length cut falls on the quietest frame of the segment's last 2 s
CANDIDATE_SILENCE_MS = 320  # a pause this long drops speech that has not yet opened a segment


class Edge(str, Enum):
    START = "start"
    END = "end"


class Boundary(NamedTuple):
    """A segment starts or ends at sample ``at``."""

    edge: Edge
    at: int


class Frame(NamedTuple):
    """One VAD frame of the open candidate or segment."""

    start: int
    end: int
    energy: float  # mean square, for the max-length cut
    speech: bool


class Segmenter:
    """Feed each frame's speech score to ``decide``; it returns the segment ``Boundary``s it causes.

    A frame scoring ``threshold`` or more starts a candidate; it stays speech while frames score
    ``neg_threshold`` or more. The candidate becomes a segment (a retroactive start) once its speech
    spans ``min_speech_ms``, and until then survives pauses of up to ``CANDIDATE_SILENCE_MS``. A
    pause of ``min_silence_ms`` ends a segment where its speech ended (a short first word is a
    segment of its own then: its turn joins it to the sentence after it). So a segment never ends
    where it starts, and none is longer than ``max_segment_s``.

    ``config`` is a ``VadConfig``.

    >>> seg = Segmenter(VadConfig())
    >>> changes = [b for i, p in enumerate(scores) for b in seg.decide(p, i * 512, 512)]
    """

    def __init__(self, config):
        self.cfg = config
        self.active = False  # a candidate or a segment is open
        self.opened = False  # ... and it has been announced with a start
        self.start = 0  # sample where it began
        self.silent_frames = 0  # consecutive non-speech frames at its end
        self.speech_end_at = 0  # where its last speech frame ended
        self.min_speech = config.min_speech_ms * SAMPLE_RATE // 1000
        self.max_frames = config.frames(config.max_segment_s * 1000)
        self.recent: list[Frame] = []

    def decide(
        self,
        score: float,
        frame_start: int,
        frame_len: int,
        energy: float = 0.0,
        mute: bool = False,
    ) -> list[Boundary]:
        """``energy``: the frame's mean square (for a max-length cut). ``mute``: the frame is not
        this channel's speech whatever its score (the other side's voice leaking in)."""
        if mute:
            if self.active and not self.opened:  # a candidate the other side's voice runs through
                self._reset()
            score = 0.0
        frame = Frame(frame_start, frame_start + frame_len, energy, score >= self.cfg.neg_threshold)
        if not self.active:
            if score < self.cfg.threshold:
                return []
            self._begin(frame)
            return self._open_when_long_enough()
        self.recent.append(frame)
        if frame.speech:
            self.silent_frames, self.speech_end_at = 0, frame.end
        else:
            self.silent_frames += 1
        if self.silent_frames >= self.closing_frames():
            was_open = self.opened
            self._reset()
            return [Boundary(Edge.END, self.speech_end_at)] if was_open else []
        if not self.opened:
            return self._open_when_long_enough()
        if (frame.end - self.start) // self.cfg.frame >= self.max_frames:
            return self._cut()
        return []

    def _begin(self, frame: Frame) -> None:
        self.active, self.opened = True, False
        self.start, self.speech_end_at, self.silent_frames = frame.start, frame.end, 0
        self.recent = [frame._replace(speech=True)]

    def _reset(self) -> None:
        self.active = self.opened = False
        self.silent_frames = 0
        self.recent = []

    def _open_when_long_enough(self) -> list[Boundary]:
        if self.speech_end_at - self.start < self.min_speech:
            return []
        self.opened = True
        return [Boundary(Edge.START, self.start)]

    def _cut(self) -> list[Boundary]:
        """At the length limit: end the segment at the quietest frame of its last ``CUT_SEARCH_S``;
        the speech after that frame opens the next segment (none when no speech follows it)."""
        window = self.recent[-self.cfg.frames(CUT_SEARCH_S * 1000) :]
        search = [f for f in window if f.start > self.start] or self.recent[-1:]
        quiet = min(range(len(search)), key=lambda i: (search[i].energy, -i))
        cut = search[quiet].start
        before = [f for f in self.recent if f.start < cut and f.speech]
        after = [f for f in self.recent if f.start >= cut and f.speech]
        changes = [Boundary(Edge.END, before[-1].end if before else cut)]
        if after:
            self.start = after[0].start
            self.recent = [f for f in self.recent if f.start >= self.start]
            changes.append(Boundary(Edge.START, self.start))
        else:
            self._reset()
        return changes

    def closing_frames(self) -> int:
        """Non-speech frames that close what is open: ``min_silence_ms`` for a segment (its event
        must come soon); a candidate, announced to no one yet, waits longer, so that a short first
        sound and its pause join the speech after it."""
        cfg = self.cfg
        return cfg.frames(
            cfg.min_silence_ms if self.opened else max(cfg.min_silence_ms, CANDIDATE_SILENCE_MS)
        )

    def closing_at(self) -> int | None:
        """Where the open segment ends if the next frame is non-speech too (its speech's end), or
        None when one more frame cannot close it."""
        if self.opened and self.silent_frames and self.silent_frames >= self.closing_frames() - 1:
            return self.speech_end_at
        return None

    @property
    def pending(self) -> int | None:
        """Where the speech being followed (a candidate or an open segment) started; None when
        there is none."""
        return self.start if self.active else None

    def speech_end(self, now: int) -> int:
        """Where the open segment's speech ends so far: ``now``, or the start of a trailing
        pause."""
        return self.speech_end_at if self.silent_frames else now

    def finish(self, stream_end: int) -> list[Boundary]:
        """The stream ended at ``stream_end``: the end of the open segment, if any."""
        was_open, end = self.opened, self.speech_end(stream_end)
        self.active = self.opened = False
        return [Boundary(Edge.END, end)] if was_open else []
