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
    from; ``label``: the shown label (neutral unless another has the evidence:
    ``calibration.Calibration``); ``probs``: every label's calibrated probability; ``seq``: the
    event's number in its stream; ``arousal``: 0 (calm, tired) to 1 (agitated, excited)."""

    type: EventType
    channel: int
    start: float
    end: float
    lang: str
    label: str
    probs: dict[str, float]
    seq: int
    arousal: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "type", EventType(self.type))

    def to_dict(self) -> dict:
        """JSON-ready, times to the millisecond and probabilities to 4 places."""
        d = asdict(self)
        d["type"] = self.type.value
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        d["probs"] = {k: round(v, 4) for k, v in self.probs.items()}
        d["arousal"] = None if self.arousal is None else round(self.arousal, 3)
        return d


@dataclass(frozen=True)
class Prediction:
    """A whole clip's label, calibrated probabilities and arousal (as ``Event``); ``label`` is None
    when the clip holds no speech (``probs`` empty, ``arousal`` None)."""

    label: str | None
    probs: dict[str, float]
    arousal: float | None = None
