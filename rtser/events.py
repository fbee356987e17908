"""What the runtime emits: timestamped label events, and their text/machine formats."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    type: str          # "label" (rolling, every hop) or "segment" (end of a speech segment)
    channel: int
    start: float       # seconds of stream time
    end: float
    lang: str
    label: str
    probs: dict[str, float]
    seq: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        d["probs"] = {k: round(v, 4) for k, v in self.probs.items()}
        return d


@dataclass(frozen=True)
class Prediction:
    label: str | None          # None when the clip holds no speech (then probs is empty)
    probs: dict[str, float]


def clock(t: float, decimals: int = 3) -> str:
    """``mm:ss.sss`` (``h:mm:ss.sss`` past an hour) with ``decimals`` digits of seconds."""
    m, s = divmod(round(t, decimals), 60)
    h, m = divmod(int(m), 60)
    sec = f"{s:0{3 + decimals if decimals else 2}.{decimals}f}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m:02d}:{sec}"


class Formatter:
    """Writes events as they come: ``table`` (people), ``jsonl``, ``csv``; ``json`` at the end."""

    def __init__(self, fmt: str, out, labels: list[str], segments_only: bool = False):
        self.fmt, self.out, self.labels, self.segments_only = fmt, out, labels, segments_only
        self.collected: list[dict] = []
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(["seq", "type", "channel", "start", "end", "lang", "label", *self.labels])
        elif fmt == "table":
            out.write(f"{'start':>9}  {'end':>9}  ch  {'type':7}  {'label':10}  top probabilities\n")

    def write(self, e: Event) -> None:
        if self.segments_only and e.type != "segment":
            return
        d = e.to_dict()
        if self.fmt == "jsonl":
            self.out.write(json.dumps(d, allow_nan=False) + "\n")
        elif self.fmt == "json":
            self.collected.append(d)
        elif self.fmt == "csv":
            self.csv.writerow([e.seq, e.type, e.channel, d["start"], d["end"], e.lang, e.label,
                               *(d["probs"][k] for k in self.labels)])
        else:
            top = sorted(e.probs.items(), key=lambda kv: -kv[1])[:3]
            mark = "segment" if e.type == "segment" else "label"
            self.out.write(f"{clock(e.start):>9}  {clock(e.end):>9}  {e.channel:2d}  {mark:7}  {e.label:10}  "
                           + "  ".join(f"{k} {v:.2f}" for k, v in top) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps(self.collected, indent=1, allow_nan=False) + "\n")

