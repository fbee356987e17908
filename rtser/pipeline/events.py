"""What the pipeline gives: timestamped label events of a stream, and a clip's prediction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class EventType(str, Enum):
    LABEL = "label"  # rolling, every hop while someone speaks: the segment's last window, smoothed
    SEGMENT = "segment"  # when a stretch of speech ends: the whole segment, unsmoothed

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Event:
    """One label of a stream. ``start``/``end``: seconds of stream time, the speech the label comes
    from; ``probs``: every label's probability; ``seq``: the event's number in its stream."""

    type: EventType
    channel: int
    start: float
    end: float
    lang: str
    label: str
    probs: dict[str, float]
    seq: int

    def __post_init__(self):
        object.__setattr__(self, "type", EventType(self.type))

    def to_dict(self) -> dict:
        """JSON-ready, times to the millisecond and probabilities to 4 places."""
        d = asdict(self)
        d["type"] = self.type.value
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        d["probs"] = {k: round(v, 4) for k, v in self.probs.items()}
        return d


@dataclass(frozen=True)
class Prediction:
    """A whole clip's label; ``label`` is None when the clip holds no speech (``probs`` empty)."""

    label: str | None
    probs: dict[str, float]
