"""Turns: a speaker's segments joined across pauses shorter than a turn gap.

A segment is reported as soon as a pause of ``min_silence_ms`` ends it, so that an alert can go
out within 300 ms; but a speaker pauses inside a sentence too, and a label per fragment is a label
of too little speech. A turn collects its segments until a silence of ``TURN_GAP_S`` (or the end
of the stream) ends it; then it is labelled once, from the chunk states of its whole span (its
segments and the pauses between them, on one chunk grid: the stream keeps them), as
``Recognizer.predict`` labels a clip. ``TurnTracker`` sees that silence between segments,
``VAD_TAIL_S`` shorter."""

from __future__ import annotations

from dataclasses import dataclass

from ..audio import SAMPLE_RATE
from .classifier import Scores

TURN_GAP_S = 0.8  # silence this long ends a turn (bench/calls.py: pauses inside utterances)
# The VAD's segments end a little after the speech does (Silero with the line floor: a median of
# about 30 ms on the clean calls of bench/calls.py, -40 to 75 ms across its line conditions) and
# start just after it, so the pause between two segments is about this much shorter than the
# silence between the speech.
VAD_TAIL_S = 0.05
MAX_TURN_S = 60.0  # a longer monologue is labelled in turns of about this much speech


@dataclass
class Turn:
    """An open turn: its id, where its speech starts and ends (samples), where the audio its last
    segment was labelled from ends (``span_end``: a little after its speech), how many segments
    it holds, and its last segment's scores (a one-segment turn's are its own)."""

    id: int
    start: int
    end: int
    span_end: int = 0
    segments: int = 0
    last: Scores | None = None


class TurnTracker:
    """One channel's open turn. ``join`` a segment when it starts (the turn it belongs to, and the
    turn it ended, if any); ``add`` its features when it closes, or ``discard_empty`` when it was
    music; ``due`` says when a pause closed the turn, ``finish`` at the end of the stream.
    ``gap_s``: the pause between segments that ends a turn."""

    def __init__(self, gap_s: float = TURN_GAP_S - VAD_TAIL_S):
        self.gap = int(gap_s * SAMPLE_RATE)
        self.longest = int(MAX_TURN_S * SAMPLE_RATE)
        self.open: Turn | None = None

    def join(self, start: int, new_id: int) -> tuple[Turn, Turn | None]:
        """A segment starts at ``start``: it joins the open turn unless a turn gap passed since
        that turn's speech ended; then the open turn is over and ``new_id`` opens the next."""
        ended = None
        turn = self.open
        if turn is not None and (
            start - turn.end >= self.gap or start - turn.start >= self.longest
        ):
            ended, self.open = self.open, None
        if self.open is None:
            self.open = Turn(new_id, start, start)
        return self.open, ended

    def add(self, end: int, span_end: int, scores: Scores) -> None:
        """The open turn's current segment's speech ended at ``end``; it was labelled from the
        audio up to ``span_end``, with these scores."""
        turn = self.open
        turn.end, turn.span_end, turn.last = end, span_end, scores
        turn.segments += 1

    def discard_empty(self) -> None:
        """Forget the open turn if none of its segments was speech (music that the gate caught)."""
        if self.open is not None and not self.open.segments:
            self.open = None

    def due(self, now: int, pending: int | None) -> Turn | None:
        """The open turn, once a turn gap has passed since its speech ended with no speech since
        (``pending``: where the speech the VAD is following started, None when there is none)."""
        turn = self.open
        if turn is None or not turn.segments or now < turn.end + self.gap:
            return None
        if pending is not None and pending < turn.end + self.gap:
            return None
        self.open = None
        return turn

    def finish(self) -> Turn | None:
        turn, self.open = self.open, None
        return turn if turn is not None and turn.segments else None
