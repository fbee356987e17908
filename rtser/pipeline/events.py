"""What the pipeline gives: timestamped label events of a stream, and a clip's prediction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class EventType(str, Enum):
    LABEL = "label"  # rolling, every hop while someone speaks: the segment's last window, smoothed
    SEGMENT = "segment"  # provisional: a stretch of speech ended (a pause, maybe inside a turn)
    TURN = "turn"  # final: the turn ended (a pause of a turn gap), its whole span labelled once

    @property
    def final(self) -> bool:
        return self is EventType.TURN

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Event:
    """One label of a stream. ``start``/``end``: seconds of stream time, the speech the label comes
    from; ``label``: the shown label (neutral unless another has the evidence:
    ``calibration.Calibration``); ``probs``: every label's calibrated probability; ``seq``: the
    event's number in its stream; ``arousal``: 0 (calm, tired) to 1 (agitated, excited);
    ``turn``: the id of the turn it belongs to (a ``turn`` event replaces the ``segment`` and
    ``label`` events of its id); ``final``: whether it is a turn's final label."""

    type: EventType
    channel: int
    start: float
    end: float
    lang: str
    label: str
    probs: dict[str, float]
    seq: int
    arousal: float | None = None
    turn: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "type", EventType(self.type))

    def to_dict(self) -> dict:
        """JSON-ready, times to the millisecond and probabilities to 4 places."""
        d = asdict(self)
        d["type"] = self.type.value
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        d["probs"] = {k: round(v, 4) for k, v in self.probs.items()}
        d["arousal"] = None if self.arousal is None else round(self.arousal, 3)
        d["final"] = self.final
        return d

    @property
    def final(self) -> bool:
        return self.type.final


@dataclass(frozen=True)
class Prediction:
    """A whole clip's label, calibrated probabilities and arousal (as ``Event``); ``label`` is None
    when the clip holds no speech (``probs`` empty, ``arousal`` None)."""

    label: str | None
    probs: dict[str, float]
    arousal: float | None = None
