"""Streaming: audio blocks -> 16 kHz -> VAD frames -> rolling windows -> smoothed label events.

Every channel advances in lockstep, frame by frame, so the events depend only on the audio and
never on how it was chunked into ``push`` calls.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .audio import ToMono16k, as_float
from .errors import RtserError
from .events import Event
from .frontend import SAMPLE_RATE
from .model import Classifier
from .smoothing import LabelSmoother
from .vad import Segmenter, VadConfig


class _Channel:
    """One channel's VAD state, recent audio and label smoother."""

    def __init__(self, index: int, vad: VadConfig, labels: list[str], keep: int):
        self.index = index
        self.segmenter = Segmenter(vad)
        self.smoother = LabelSmoother(labels)
        self.keep = keep                      # samples kept behind the present when idle
        self.buf = np.zeros(2 * SAMPLE_RATE, np.float32)
        self.size = 0                         # buf[:size] holds samples [offset, offset + size)
        self.offset = 0
        self.seg_start: int | None = None
        self.next_hop = 0

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
    Thread-safe; ``callback(event)`` (optional) is called for every event as well."""

    def __init__(self, classifier: Classifier, sample_rate: int = SAMPLE_RATE, channels: int = 1,
                 split: bool = False, window_s: float = 3.0, hop_s: float = 0.5,
                 vad: VadConfig = VadConfig(), callback: Callable[[Event], None] | None = None):
        self.clf, self.vad, self.callback = classifier, vad, callback
        self.sample_rate, self.n_channels = int(sample_rate), int(channels)
        self.window, self.hop = int(window_s * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
        self.min_window = min(self.window, SAMPLE_RATE)  # shorter windows give unreliable labels
        self.pad = vad.pad_ms * SAMPLE_RATE // 1000
        self.convert = ToMono16k(self.sample_rate, self.n_channels, split)
        n = self.n_channels if split else 1
        self.channels = [_Channel(i, vad, self.clf.labels, self.window + self.pad) for i in range(n)]
        self.pos = 0      # 16 kHz samples already cut into VAD frames
        self.seq = 0
        self.closed = False
        self.lock = threading.Lock()

    def push(self, samples) -> list[Event]:
        x = as_float(samples, self.n_channels)
        if x.shape[1] != self.n_channels:
            raise RtserError(f"expected {self.n_channels} channel(s), got {x.shape[1]}")
        with self.lock:
            if self.closed:
                raise RuntimeError("push() after close()")
            for ch, y in zip(self.channels, self.convert.process(x)):
                ch.append(y)
            return self._run()

    def close(self) -> list[Event]:
        with self.lock:
            if self.closed:
                return []
            self.closed = True
            for ch, y in zip(self.channels, self.convert.flush()):
                ch.append(y)
            events = self._run()
            end = self.channels[0].end
            for ch in self.channels:
                for kind, at in ch.segmenter.finish(end):
                    events += self._change(ch, kind, at, end)
            return events

    @property
    def stream_time(self) -> float:
        return self.pos / SAMPLE_RATE

    def _run(self) -> list[Event]:
        frame = self.vad.frame
        events: list[Event] = []
        available = self.channels[0].end
        while self.pos + frame <= available:
            start, end = self.pos, self.pos + frame
            for ch in self.channels:
                for kind, at in ch.segmenter.step(ch.span(start, end), start):
                    events += self._change(ch, kind, at, end)
                if ch.seg_start is not None and end >= ch.next_hop:
                    ch.next_hop += self.hop
                    events.append(self._label(ch, end))
                ch.trim(end)
            self.pos = end
        return events

    def _change(self, ch: _Channel, kind: str, at: int, now: int) -> list[Event]:
        if kind == "start":  # first rolling label once the segment holds min_window of audio
            ch.seg_start, ch.next_hop = at, at + max(self.hop, self.min_window)
            ch.smoother.reset()
            return []
        start, ch.seg_start = ch.seg_start, None
        probs = self.clf.probs(ch.span(start - self.pad, min(at + self.pad, now)))
        return [self._event("segment", ch, start, at, self.clf.labels[int(np.argmax(probs))], probs)]

    def _label(self, ch: _Channel, now: int) -> Event:
        a = max(ch.seg_start, now - self.window)
        label, smooth = ch.smoother.update(self.clf.probs(ch.span(max(ch.seg_start - self.pad, now - self.window), now)))
        return self._event("label", ch, a, now, label, smooth)

    def _event(self, kind, ch, start, end, label, probs) -> Event:
        e = Event(kind, ch.index, start / SAMPLE_RATE, end / SAMPLE_RATE, self.clf.lang, label,
                  {k: float(p) for k, p in zip(self.clf.labels, probs)}, self.seq)
        self.seq += 1
        if self.callback:
            self.callback(e)
        return e
