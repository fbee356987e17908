"""How far below the other side of a split call a channel's speech may lie and still be its own.

Each side's voice leaks into the other's channel: a headset's crosstalk, the line's echo, a
recorder that mixes a little of both. How much depends on the equipment, so a channel measures it:
over the frames where the other side speaks and this channel is quieter, the level below the other
side that three in four of them reach, its near quartile. Most such frames hold only the leak;
this side talking at once, or a leak that varies, brings the quartile nearer and the rule
stricter, never laxer. A frame within ``MARGIN_DB`` of that leak is the leak. Until
``MIN_FRAMES`` have been measured, and never stricter, a frame ``ECHO_DB`` below is the leak: a
quiet side that talks over a loud one is heard as soon as the leak is known to be lower and
steady."""

from __future__ import annotations

import math

ECHO_DB = 12.0  # a frame this far below the other side is its echo, until the leak is measured
MARGIN_DB = 6.0  # ... then a frame within this of the measured leak is that leak
MIN_FRAMES = 60  # about 2 s of the other side's speech
MOST_DB = 40  # never hear as this side's a frame more than this below the other side's


class Crosstalk:
    """One channel's measure of the other side's leak. ``observe`` each frame where the other side
    speaks (energies over each line's noise floor); ``ratio``: the other side's energy over this
    one's above which a frame, or a segment's speech as a whole, is the other side's voice."""

    def __init__(self) -> None:
        # frames by whole dB below the other side; the last bin holds all from MOST_DB + MARGIN_DB
        self.below = [0] * (round(MOST_DB + MARGIN_DB) + 1)
        self.frames = 0
        self.ratio = 10 ** (ECHO_DB / 10)

    def observe(self, own: float, other: float) -> None:
        if own >= other:
            return
        last = len(self.below) - 1
        self.below[min(int(10 * math.log10(other / own)), last) if own > 0 else last] += 1
        self.frames += 1
        if self.frames < MIN_FRAMES:
            return
        reach = 0  # frames at least ``leak`` dB below: from the farthest bin in, to three in four
        for leak in range(last, -1, -1):
            reach += self.below[leak]
            if 4 * reach >= 3 * self.frames:
                break
        self.ratio = 10 ** (min(max(leak - MARGIN_DB, ECHO_DB), MOST_DB) / 10)

    def leaks(self, own: float, other: float) -> bool:
        """A frame (or a span's summed energies) far enough below the other side's is its voice."""
        return own * self.ratio < other
