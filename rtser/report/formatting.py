"""Events for people and machines: clock times, the top probabilities, and the table, JSONL, CSV
and JSON formats of ``rtser file``."""

from __future__ import annotations

import csv
import json

from ..pipeline.events import Event, EventType


def clock(t: float, decimals: int = 3) -> str:
    """``mm:ss.sss`` (``h:mm:ss.sss`` past an hour) with ``decimals`` digits of seconds.

    >>> clock(75.5, 1)
    '01:15.5'
    """
    m, s = divmod(round(t, decimals), 60)
    h, m = divmod(int(m), 60)
    sec = f"{s:0{3 + decimals if decimals else 2}.{decimals}f}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m:02d}:{sec}"


def top_probs(probs: dict[str, float], n: int = 3) -> str:
    """The ``n`` most probable labels, most probable first: ``anger 0.81  fear 0.10  ...``."""
    top = sorted(probs, key=probs.get, reverse=True)[:n]
    return "  ".join(f"{k} {probs[k]:.2f}" for k in top)


class Formatter:
    """Writes events as they come: ``table`` (people), ``jsonl``, ``csv``; ``json`` at ``close()``.
    Rows: rolling labels and final turns; ``interim`` adds the provisional segments,
    ``finals_only`` keeps the turns alone.

    >>> out = Formatter("jsonl", sys.stdout, rec.labels)
    >>> for e in events:
    ...     out.write(e)
    >>> out.close()
    """

    def __init__(
        self, fmt: str, out, labels: list[str], finals_only: bool = False, interim: bool = False
    ):
        self.fmt, self.out, self.labels = fmt, out, labels
        self.shown = {EventType.TURN} if finals_only else {EventType.TURN, EventType.LABEL}
        if interim:
            self.shown.add(EventType.SEGMENT)
        self.collected: list[dict] = []
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            header = ["seq", "type", "turn", "channel", "start", "end", "lang", "label", "arousal"]
            self.csv.writerow([*header, *self.labels])
        elif fmt == "table":
            out.write(
                f"{'start':>9}  {'end':>9}  ch  {'type':7}  {'label':10}  arousal  "
                "top probabilities\n"
            )

    def write(self, e: Event) -> None:
        if e.type not in self.shown:
            return
        d = e.to_dict()
        if self.fmt == "jsonl":
            self.out.write(json.dumps(d, allow_nan=False) + "\n")
        elif self.fmt == "json":
            self.collected.append(d)
        elif self.fmt == "csv":
            row = [e.seq, d["type"], e.turn, e.channel, d["start"], d["end"], e.lang, e.label]
            row.append(d["arousal"])
            self.csv.writerow([*row, *(d["probs"][k] for k in self.labels)])
        else:
            arousal = "" if e.arousal is None else f"{e.arousal:.2f}"
            self.out.write(
                f"{clock(e.start):>9}  {clock(e.end):>9}  {e.channel:2d}  {d['type']:7}  "
                f"{e.label:10}  {arousal:>7}  {top_probs(e.probs)}\n"
            )
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps(self.collected, indent=1, allow_nan=False) + "\n")
