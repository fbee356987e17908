"""Streaming: audio blocks -> 16 kHz -> VAD frames -> chunk features -> pooled windows -> head ->
smoothed label events.

Every channel advances in lockstep, frame by frame, so the events depend only on the audio and
never on how it was chunked into ``push`` calls. The VAD sees a stream start and end in silence,
as it sees a lone clip in ``Vad.speech_bounds``, and the model reads only the stream's own audio,
encoded once per segment in 2 s chunks (``rtser.chunks``), so a clip streamed alone gets the
segment label that ``Recognizer.predict`` gives it. Rolling labels come as each chunk completes.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .audio import ToMono16k, as_float, check_sample_rate
from .chunks import CHUNK, FeatureTrack
from .errors import RtserError
from .events import Event
from .frontend import SAMPLE_RATE
from .model import Classifier
from .smoothing import LabelSmoother
from .vad import Vad, energy


ECHO_RATIO = 10 ** (12 / 10)  # a split channel 12 dB below another one hears that one's echo


class _Channel:
    """One channel's VAD state, recent audio, chunk features and label smoother."""

    def __init__(self, index: int, vad: Vad, clf: Classifier, keep: int, lead: int):
        self.index = index
        self.detector = vad.detector()
        self.segmenter = vad.segmenter()
        self.smoother = LabelSmoother(clf.labels)
        self.track = FeatureTrack(clf.encoder, self.span)
        self.keep = keep                      # samples kept behind the present when idle
        self.buf = np.zeros(2 * SAMPLE_RATE, np.float32)
        self.size = lead                      # buf[:size] holds samples [offset, offset + size):
        self.offset = -lead                   # the stream starts after ``lead`` samples of silence
        self.seg_start: int | None = None
        self.next_label = 0                   # the chunk boundary of the next rolling label
        self.labelled_to = 0                  # where the last rolling label's speech ended
        self.early: tuple[int, int, np.ndarray] | None = None  # (start, end, probs) of the open segment

    @property
    def end(self) -> int:
        return self.offset + self.size

    def append(self, x: np.ndarray) -> None:
        if self.size + len(x) > len(self.buf):  # grow geometrically: appends stay amortised O(len(x))
            self.buf = np.concatenate([self.buf[: self.size], np.zeros(max(len(self.buf), len(x)), np.float32)])
        self.buf[self.size: self.size + len(x)] = x
        self.size += len(x)

    def span(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b): a view, valid until the next ``append`` or ``trim``."""
        return self.buf[max(a, self.offset) - self.offset: max(b, self.offset) - self.offset]

    def trim(self, now: int) -> None:
        oldest = now - self.keep if self.seg_start is None else min(self.seg_start, now) - self.keep
        drop = oldest - self.offset
        if drop > SAMPLE_RATE:  # trim in 1 s steps, not every frame
            self.buf[: self.size - drop] = self.buf[drop: self.size]
            self.size -= drop
            self.offset = oldest


class StreamSession:
    """``push(samples)`` returns the events the new audio completes; ``close()`` flushes the rest.

    Thread-safe. ``callback(event)`` (optional) gets every event as well, in order, after the
    session's lock is released: a callback may call ``close()``, and one that raises leaves the
    session consistent (its error is raised from ``push``/``close`` once every event was delivered)."""

    def __init__(self, classifier: Classifier, vad: Vad, sample_rate: int = SAMPLE_RATE, channels: int = 1,
                 split: bool = False, window_s: float = 3.0, hop_s: float = CHUNK / SAMPLE_RATE,
                 callback: Callable[[Event], None] | None = None):
        self.clf, self.callback = classifier, callback
        self.frame = vad.config.frame
        self.sample_rate, self.n_channels = check_sample_rate(sample_rate), int(channels)
        self.window, self.hop = int(window_s * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
        self.pad, self.post_pad = vad.config.pad, vad.config.post_pad
        lead = vad.lead()
        self.convert = ToMono16k(self.sample_rate, self.n_channels, split)
        n = self.n_channels if split else 1
        self.channels = [_Channel(i, vad, self.clf, self.window + self.pad, lead) for i in range(n)]
        self.pos = -lead  # 16 kHz samples already cut into VAD frames
        self.seq = 0
        self.closed = False
        self.audio_end: int | None = None  # set by close(); events never run past it
        self.lock = threading.Lock()

    def push(self, samples) -> list[Event]:
        x = as_float(samples, self.n_channels)
        if x.shape[1] != self.n_channels:
            raise RtserError(f"expected {self.n_channels} channel(s), got {x.shape[1]}")
        events: list[Event] = []
        with self.lock:
            if self.closed:
                raise RtserError("push() after close(): start a new session for new audio")
            for i in range(0, len(x), self.sample_rate):  # 1 s at a time: memory stays bounded
                for ch, y in zip(self.channels, self.convert.process(x[i:i + self.sample_rate])):
                    ch.append(y)
                events += self._run()
        return self._deliver(events)

    def close(self) -> list[Event]:
        with self.lock:
            if self.closed:
                return []
            self.closed = True
            for ch, y in zip(self.channels, self.convert.flush()):
                ch.append(y)
            self.audio_end = self.channels[0].end
            for ch in self.channels:  # trailing silence, as around a lone clip
                ch.append(np.zeros(self.pad + self.frame, np.float32))
            events = self._run()
            for ch in self.channels:
                for kind, at in ch.segmenter.finish(ch.end):
                    events += self._change(ch, kind, at, ch.end)
        return self._deliver(events)

    def _deliver(self, events: list[Event]) -> list[Event]:
        if self.callback is None:
            return events
        errors = []
        for e in events:
            try:
                self.callback(e)
            except Exception as error:  # the other events still reach the callback
                errors.append(error)
        if errors:
            raise errors[0]
        return events

    @property
    def stream_time(self) -> float:
        """Seconds of audio analysed so far."""
        return (self.audio_end if self.closed else max(self.pos, 0)) / SAMPLE_RATE

    def _run(self) -> list[Event]:
        """The whole frames that every channel has: scored by each channel's VAD in one call, then
        taken one by one, all channels in step."""
        frame = self.frame
        n = (self.channels[0].end - self.pos) // frame
        if n <= 0:
            return []
        blocks = [ch.span(self.pos, self.pos + n * frame).reshape(n, frame) for ch in self.channels]
        scores = [ch.detector.scores(b) for ch, b in zip(self.channels, blocks)]
        energies = [[energy(f) for f in b] for b in blocks]
        events: list[Event] = []
        for i in range(n):
            start, end = self.pos, self.pos + frame
            loudest = max(e[i] for e in energies)
            for ch, s, e in zip(self.channels, scores, energies):
                # split channels are the two sides of one call: a frame far below the other side's
                # is that side's voice leaking in (echo, crosstalk), not speech of this channel
                echo = len(self.channels) > 1 and e[i] * ECHO_RATIO < loudest
                for kind, at in ch.segmenter.decide(float(s[i]), start, frame, e[i], mute=echo):
                    events += self._change(ch, kind, at, end)
                self._classify_early(ch, end)
                if ch.seg_start is not None and end >= ch.next_label:
                    events += self._label(ch, ch.next_label)
                    ch.next_label += self.hop
                ch.trim(end)
            self.pos = end
        return events

    def _change(self, ch: _Channel, kind: str, at: int, now: int) -> list[Event]:
        if kind == "start":  # the segment's audio, and its chunk grid, start pad before its speech
            ch.seg_start, ch.labelled_to = at, at
            ch.track.reset(max(at - self.pad, 0))
            ch.next_label = ch.track.anchor + CHUNK  # the first rolling label once a chunk is whole
            ch.smoother.reset()
            return []
        start, ch.seg_start = ch.seg_start, None
        if ch.early and ch.early[:2] == (start, at) and at + self.post_pad <= now:
            probs = ch.early[2]  # the same audio, classified while the closing silence ran
        else:
            probs = self._probs(ch, start - self.pad, min(at + self.post_pad, now))
        ch.early = None
        return [self._event("segment", ch, start, at, self.clf.labels[int(np.argmax(probs))], probs)]

    def _label(self, ch: _Channel, boundary: int) -> list[Event]:
        """The segment's last ``window`` up to a chunk ``boundary``, when its speech has grown; the
        event ends where the speech does (a trailing pause left out)."""
        end = ch.segmenter.speech_end(boundary)
        if end <= ch.labelled_to:
            return []
        ch.labelled_to = end
        probs = self._probs(ch, max(ch.seg_start - self.pad, boundary - self.window), boundary)
        label, smooth = ch.smoother.update(probs)
        return [self._event("label", ch, max(ch.seg_start, end - self.window), end, label, smooth)]

    def _classify_early(self, ch: _Channel, now: int) -> None:
        """One frame before a pause is long enough to close the segment (and once it holds
        ``post_pad`` of audio), classify the segment as it would close there, so that its event
        leaves the moment the pause closes it. Not earlier: most shorter pauses are inside speech, and
        that work would be thrown away. The probabilities are those of the close (same audio), so
        events do not depend on it."""
        seg = ch.segmenter
        if (ch.seg_start is None or not seg.run or seg.run < seg.closing_frames() - 1
                or now - seg.last_speech_end < self.post_pad):
            return
        key = (ch.seg_start, seg.last_speech_end)
        if ch.early is None or ch.early[:2] != key:
            ch.early = (*key, self._probs(ch, key[0] - self.pad, key[1] + self.post_pad))

    def _probs(self, ch: _Channel, a: int, b: int) -> np.ndarray:
        """The head on [a, b): only the stream's own audio, never the silence the VAD is primed
        with before it or flushed with after it (as ``Recognizer.predict`` cuts a clip)."""
        return self.clf.probs(ch.track.features(max(a, 0), b if self.audio_end is None else min(b, self.audio_end)))

    def _event(self, kind, ch, start, end, label, probs) -> Event:
        if self.audio_end is not None:
            end = min(end, self.audio_end)
        e = Event(kind, ch.index, start / SAMPLE_RATE, end / SAMPLE_RATE, self.clf.lang, label,
                  {k: float(p) for k, p in zip(self.clf.labels, probs)}, self.seq)
        self.seq += 1
        return e
