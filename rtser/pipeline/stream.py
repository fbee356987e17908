"""Streaming: audio blocks -> 16 kHz -> VAD frames -> chunk features -> pooled windows -> head ->
smoothed label events.

Every channel advances in lockstep, frame by frame, so the events depend only on the audio and
never on how it was chunked into ``push`` calls. The VAD sees a stream start and end in silence,
as it sees a lone clip in ``Vad.speech_bounds``, and the model reads only the stream's own audio,
encoded once per turn in 2 s chunks (``features``), so a clip streamed alone gets the turn label
that ``Recognizer.predict`` gives it. Rolling labels come as each chunk completes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..audio import SAMPLE_RATE, ToMono16k, as_float, check_sample_rate
from ..errors import RtserError
from .classifier import Classifier, Scores
from .crosstalk import Crosstalk
from .events import Event, EventType
from .features import CHUNK, CONTEXT, FeatureTrack
from .segmenter import Boundary, Edge
from .site import SiteBaseline
from .smoothing import LabelSmoother
from .turns import Turn, TurnTracker
from .vad import Vad

LEAD_S = 0.5  # speech heard just before a segment opens counts in its echo test


class ClosingScores(NamedTuple):
    """The open segment classified as it would close, while its closing silence runs."""

    start: int
    end: int
    scores: Scores


class _Channel:
    """One channel's VAD state, recent audio, open segment, chunk features and label smoother."""

    def __init__(self, index: int, vad: Vad, classifier: Classifier, keep: int, priming: int):
        self.index = index
        self.detector = vad.detector()
        self.segmenter = vad.segmenter()
        self.smoother = LabelSmoother(classifier.calibration)
        self.track = FeatureTrack(classifier.encoder, self.span)
        self.keep = keep  # samples kept behind the present when idle
        self.buf = np.zeros(2 * SAMPLE_RATE, np.float32)
        self.size = priming  # buf[:size] holds samples [offset, offset + size):
        self.offset = -priming  # the stream starts after ``priming`` samples of silence
        self.segment_start: int | None = None  # where the open segment's speech starts
        self.next_label = 0  # the chunk boundary of the next rolling label
        self.labelled_to = 0  # where the last rolling label's speech ended
        self.closing: ClosingScores | None = None
        self.turns = TurnTracker()
        self.turn_id: int | None = None  # the turn of the open segment
        self.crosstalk = Crosstalk()  # how loud the other side's voice leaks into this channel
        self.heard = [0.0, 0.0]  # energy in its speech frames, and the other side's (``hear``)
        self.lead: deque[tuple[float, float]] = deque(
            maxlen=round(LEAD_S * SAMPLE_RATE / vad.config.frame)
        )

    @property
    def end(self) -> int:
        return self.offset + self.size

    def append(self, x: np.ndarray) -> None:
        if self.size + len(x) > len(
            self.buf
        ):  # grow geometrically: appends stay amortised O(len(x))
            grown = np.zeros(max(len(self.buf), len(x)), np.float32)
            self.buf = np.concatenate([self.buf[: self.size], grown])
        self.buf[self.size : self.size + len(x)] = x
        self.size += len(x)

    def span(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b): a view, valid until the next ``append`` or ``trim``."""
        return self.buf[max(a, self.offset) - self.offset : max(b, self.offset) - self.offset]

    def trim(self, now: int) -> None:
        held = now if self.segment_start is None else min(self.segment_start, now)
        turn = self.turns.open
        if turn is not None and turn.segments:  # a segment that joins it fills the chunks between
            held = min(held, turn.end)
        oldest = held - self.keep
        drop = oldest - self.offset
        if drop > SAMPLE_RATE:  # trim in 1 s steps, not every frame
            self.buf[: self.size - drop] = self.buf[drop : self.size]
            self.size -= drop
            self.offset = oldest

    def open_segment(self, start: int, pad: int, now: int, joins: bool) -> None:
        """A segment's speech starts at ``start``, its audio ``pad`` earlier. One that ``joins``
        the open turn stays on the turn's chunk grid; another starts the grid of a new turn."""
        self.segment_start = self.labelled_to = start
        if joins:
            self.track.fill(now)
        else:
            self.track.reset(max(start - pad, 0))
        # the first rolling label once a chunk's worth of the segment's audio is in
        ahead = start - pad + CHUNK - self.track.anchor
        self.next_label = self.track.anchor + -(-ahead // CHUNK) * CHUNK
        self.smoother.reset()

    def hear(self, score: float, own: float, other: float) -> None:
        """Count a frame toward ``hears_echo`` (``own``: its energy above the floor; ``other``: the
        loudest other channel's): every speech frame of the open candidate or segment, and those
        of the ``LEAD_S`` of speech before it began (the VAD goes on hearing the other side's echo
        for a moment after that side stops, and the muted frames opened nothing)."""
        speech = score >= self.segmenter.cfg.neg_threshold
        heard = self.heard
        if self.segmenter.active:
            self.lead.clear()
            if speech:
                heard[0] += own
                heard[1] += other
        elif speech:  # a few frames at most: summed again rather than kept in step
            self.lead.append((own, other))
            heard[0], heard[1] = sum(a for a, _ in self.lead), sum(b for _, b in self.lead)
        else:
            self.lead.clear()
            heard[0] = heard[1] = 0.0

    def hears_echo(self) -> bool:
        """Its speech as a whole is far below another channel's in the same frames: that side's
        voice leaking in. The test of each frame misses a quiet syllable's echo, or the VAD's
        memory of the echo after it ends; the speech as a whole does not."""
        return self.crosstalk.leaks(*self.heard)

    def close_segment(self, end: int) -> tuple[int, Scores | None]:
        """The closed segment's start, and its scores when they were computed for this end."""
        start, self.segment_start = self.segment_start, None
        closing, self.closing = self.closing, None
        ready = closing is not None and (closing.start, closing.end) == (start, end)
        return start, closing.scores if ready else None


class StreamSession:
    """``push(samples)`` returns the events the new audio completes; ``close()`` flushes the rest.

    Parameters:
        classifier: the language's encoders and head.
        vad: how speech is found (``Vad``).
        sample_rate: of the pushed audio, in Hz (4 kHz to 768 kHz); it is resampled to 16 kHz.
        channels: interleaved channels in the pushed audio.
        split: label each channel on its own (agent / customer); else the channels are averaged.
        window_s: rolling labels read the segment's last ``window_s`` seconds ...
        hop_s: ... every ``hop_s`` seconds (a whole number of 2 s feature chunks).
        callback: gets every event as well, in order, after the session's lock is released: a
            callback may call ``close()``, and one that raises leaves the session consistent (its
            error is raised from ``push``/``close`` once every event was delivered).
        baseline: a site's baseline (``site.SiteBaseline``): its offset when the session starts
            is taken from every label of the session, and the session's final turns are added to
            it when the session closes.

    Thread-safe. Usually made by ``Recognizer.stream``:

    >>> session = Recognizer(lang="de").stream(sample_rate=8000)
    >>> for block in blocks:
    ...     for event in session.push(block):
    ...         print(event.label)
    >>> session.close()
    """

    def __init__(
        self,
        classifier: Classifier,
        vad: Vad,
        sample_rate: int = SAMPLE_RATE,
        channels: int = 1,
        split: bool = False,
        window_s: float = 3.0,
        hop_s: float = CHUNK / SAMPLE_RATE,
        callback: Callable[[Event], None] | None = None,
        baseline: SiteBaseline | None = None,
    ):
        self.baseline, self.finals = baseline, []  # finals: the turns' log-probs, to learn from
        self.offset = baseline.offset() if baseline is not None else None
        self.classifier, self.callback = classifier.shifted(self.offset), callback
        self.frame = vad.config.frame
        self.sample_rate, self.n_channels = check_sample_rate(sample_rate), int(channels)
        self.window, self.hop = int(window_s * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
        self.pad, self.post_pad = vad.config.pad, vad.config.post_pad
        priming = vad.priming()
        self.convert = ToMono16k(self.sample_rate, self.n_channels, split)
        n = self.n_channels if split else 1
        keep = max(self.window, CHUNK + CONTEXT) + self.pad  # a window; a chunk and its context
        self.channels = [_Channel(i, vad, self.classifier, keep, priming) for i in range(n)]
        self.pos = -priming  # 16 kHz samples already cut into VAD frames
        self.next_turn = 0  # the id the next turn gets, on any channel
        self.seq = 0
        self.closed = False
        self.audio_end: int | None = None  # set by close(); events never run past it
        self.lock = threading.Lock()

    def push(self, samples) -> list[Event]:
        """Audio (float or integer samples, ``(frames,)`` or ``(frames, channels)``, or 16-bit PCM
        bytes) -> the events it completes."""
        x = as_float(samples, self.n_channels)
        if x.shape[1] != self.n_channels:
            raise RtserError(f"expected {self.n_channels} channel(s), got {x.shape[1]}")
        events: list[Event] = []
        with self.lock:
            if self.closed:
                raise RtserError("push() after close(): start a new session for new audio")
            for i in range(0, len(x), self.sample_rate):  # 1 s at a time: memory stays bounded
                for channel, y in zip(
                    self.channels, self.convert.process(x[i : i + self.sample_rate])
                ):
                    channel.append(y)
                events += self._run()
        return self._deliver(events)

    def close(self) -> list[Event]:
        """The end of the audio: the events still open (idempotent)."""
        with self.lock:
            if self.closed:
                return []
            self.closed = True
            for channel, y in zip(self.channels, self.convert.flush()):
                channel.append(y)
            self.audio_end = self.channels[0].end
            for channel in self.channels:  # trailing silence, as around a lone clip
                channel.append(np.zeros(self.pad + self.frame, np.float32))
            events = self._run()
            for channel in self.channels:
                for boundary in channel.segmenter.finish(channel.end):
                    events += self._on_boundary(channel, boundary, channel.end)
                events += self._final(channel, channel.turns.finish())
        if self.baseline is not None:
            self.baseline.add(self.finals)
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
        blocks = [c.span(self.pos, self.pos + n * frame).reshape(n, frame) for c in self.channels]
        scores = [c.detector.scores(b) for c, b in zip(self.channels, blocks)]
        energies = [c.detector.energies.tolist() for c in self.channels]
        split = len(self.channels) > 1
        # over each line's noise floor: the line noise would lift a quiet syllable's echo to within
        # reach of the other side's voice
        above = [c.detector.above.tolist() for c in self.channels] if split else []
        others = [[j for j in range(len(above)) if j != k] for k in range(len(above))]
        events: list[Event] = []
        for i in range(n):
            start, end = self.pos, self.pos + frame
            for k, (channel, score, energy_) in enumerate(zip(self.channels, scores, energies)):
                echo = False
                if split:  # two sides of one call: a frame far below the other side's is that
                    # side's voice leaking in (echo, crosstalk), not speech of this channel
                    own, other = above[k][i], max(above[j][i] for j in others[k])
                    threshold = channel.segmenter.cfg.threshold
                    if any(scores[j][i] >= threshold for j in others[k]):  # the other side speaks
                        channel.crosstalk.observe(own, other)
                    echo = channel.crosstalk.leaks(own, other)
                    channel.hear(score[i], own, other)
                decide = channel.segmenter.decide
                for boundary in decide(float(score[i]), start, frame, energy_[i], mute=echo):
                    events += self._on_boundary(channel, boundary, end)
                self._classify_before_close(channel, end)
                if channel.segment_start is not None and end >= channel.next_label:
                    events += self._label(channel, channel.next_label)
                    channel.next_label += self.hop
                events += self._final(channel, channel.turns.due(end, channel.segmenter.pending))
                channel.trim(end)
            self.pos = end
        return events

    def _on_boundary(self, channel: _Channel, boundary: Boundary, now: int) -> list[Event]:
        if boundary.edge is Edge.START:
            turn, ended = channel.turns.join(boundary.at, self.next_turn)
            events = self._final(channel, ended)  # from its track, before a new turn resets it
            self.next_turn = max(self.next_turn, turn.id + 1)
            channel.turn_id = turn.id
            channel.open_segment(boundary.at, self.pad, now, joins=turn.segments > 0)
            return events
        end = boundary.at
        start, scores = channel.close_segment(end)
        if channel.hears_echo():  # the other side's voice: no label, no part of a turn
            channel.turns.discard_empty()
            return []
        span_end = min(end + self.post_pad, now)
        if scores is None or end + self.post_pad > now:
            scores = self._scores(channel, start - self.pad, span_end)
        if not scores.speech:  # music the VAD took for speech: no label, no part of a turn
            channel.turns.discard_empty()
            return []
        channel.turns.add(end, span_end, scores)
        label = self.classifier.label(scores.probs)
        return [self._event(EventType.SEGMENT, channel, start, end, label, scores)]

    def _final(self, channel: _Channel, turn: Turn | None) -> list[Event]:
        """A turn's final event: its whole span (segments and the pauses between) labelled once."""
        if turn is None:
            return []
        if turn.segments == 1:  # the same features as its segment: the same scores
            scores = turn.last
        else:
            scores = self._scores(channel, channel.track.anchor, turn.span_end)
        if self.baseline is not None:
            self.finals.append(np.log(np.maximum(scores.probs, 1e-12)) + self.offset)
        label = self.classifier.label(scores.probs)
        return [self._event(EventType.TURN, channel, turn.start, turn.end, label, scores, turn.id)]

    def _label(self, channel: _Channel, boundary: int) -> list[Event]:
        """The segment's last ``window`` up to a chunk ``boundary``, when its speech has grown; the
        event ends where the speech does (a trailing pause left out)."""
        end = channel.segmenter.speech_end(boundary)
        if end <= channel.labelled_to:
            return []
        channel.labelled_to = end
        if channel.hears_echo():
            return []
        start = channel.segment_start
        scores = self._scores(channel, max(start - self.pad, boundary - self.window), boundary)
        if not scores.speech:
            return []
        label, smooth = channel.smoother.update(scores.probs)
        window = max(start, end - self.window)
        return [
            self._event(EventType.LABEL, channel, window, end, label, scores._replace(probs=smooth))
        ]

    def _classify_before_close(self, channel: _Channel, now: int) -> None:
        """One frame before a pause is long enough to close the segment (and once it holds
        ``post_pad`` of audio), classify the segment as it would close there, so that its event
        leaves the moment the pause closes it. Not earlier: most shorter pauses are inside speech,
        and that work would be thrown away. The probabilities are those of the close (same audio),
        so events do not depend on it."""
        end = channel.segmenter.closing_at()
        if end is None or now - end < self.post_pad:
            return
        start = channel.segment_start
        if channel.closing is None or (channel.closing.start, channel.closing.end) != (start, end):
            scores = self._scores(channel, start - self.pad, end + self.post_pad)
            channel.closing = ClosingScores(start, end, scores)

    def _scores(self, channel: _Channel, a: int, b: int) -> Scores:
        """The head's scores of [a, b): only the stream's own audio, never the silence the VAD is
        primed with before it or flushed with after it (as ``Recognizer.predict`` cuts a clip)."""
        if self.audio_end is not None:
            b = min(b, self.audio_end)
        return self.classifier.scores(channel.track.features(max(a, 0), b))

    def _event(
        self, kind: EventType, channel: _Channel, start, end, label, scores: Scores, turn=None
    ) -> Event:
        """An event numbered in the stream; ``turn``: its turn's id (the open one's by default)."""
        if self.audio_end is not None:
            end = min(end, self.audio_end)
        labels = self.classifier.labels
        e = Event(
            kind,
            channel.index,
            start / SAMPLE_RATE,
            end / SAMPLE_RATE,
            self.classifier.lang,
            label,
            {k: float(p) for k, p in zip(labels, scores.probs)},
            self.seq,
            scores.arousal,
            channel.turn_id if turn is None else turn,
        )
        self.seq += 1
        return e
