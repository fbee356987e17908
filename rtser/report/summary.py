"""A call's summary per track (or channel), from its segment events: the share of speech time of
each label, the mean confidence, the longest stretch of negative emotion, the escalation moments,
and the first and last labels. One function for the stream, ``rtser file --summary`` and ``rtser
serve``."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable

from ..pipeline.events import Event
from .formatting import clock
from .labels import NEGATIVE, alerting


def _fields(e: Event | dict) -> dict:
    if isinstance(e, Event):
        d = e.to_dict()
        return {**d, "track": e.channel, "start": e.start, "end": e.end, "probs": e.probs}
    return e


def summarize(events: Iterable[Event | dict], negative: Iterable[str] = NEGATIVE) -> dict:
    """``{track: {...}}`` over the ``segment`` events: ``Event`` objects are keyed by channel, the
    server's event dicts by their ``track``.

    >>> summarize(events)[0]["label_share"]
    {'neutral': 0.62, 'anger': 0.38}
    """
    negative = set(negative)
    tracks: dict = {}
    for e in map(_fields, events):
        if e["type"] == "segment":
            tracks.setdefault(e["track"], []).append(e)
    return {
        track: _track(sorted(segs, key=lambda s: s["start"]), negative)
        for track, segs in tracks.items()
    }


def _track(segs: list[dict], negative: set[str]) -> dict:
    seconds, confidence, arousal, rated, alert = Counter(), 0.0, 0.0, 0.0, 0.0
    for s in segs:
        d = s["end"] - s["start"]
        seconds[s["label"]] += d
        confidence += d * s["probs"].get(s["label"], 0.0)
        if s.get("arousal") is not None:
            arousal, rated = arousal + d * s["arousal"], rated + d
        alert += d * alerting(s["label"], s.get("arousal"), negative)
    speech = sum(seconds.values())
    stretches, current = [], None  # runs of consecutive negative segments
    for s in segs:
        if s["label"] in negative:
            current = current or {"start": s["start"], "labels": Counter()}
            current["end"] = s["end"]
            current["labels"][s["label"]] += s["end"] - s["start"]
        elif current:
            stretches.append(current)
            current = None
    if current:
        stretches.append(current)
    # a stretch counts its negative speech only, not the pauses or the other side's turns in it
    longest = max(stretches, key=lambda r: sum(r["labels"].values()), default=None)
    escalations = [
        {"at": round(b["start"], 3), "label": b["label"], "after": a["label"]}
        for a, b in zip(segs, segs[1:])
        if b["label"] in negative and a["label"] not in negative
    ]
    return {
        "segments": len(segs),
        "speech_s": round(speech, 2),
        "label_share": {k: round(v / speech, 3) for k, v in seconds.most_common()}
        if speech > 0
        else {},
        "mean_confidence": round(confidence / speech, 3) if speech > 0 else None,
        "mean_arousal": round(arousal / rated, 3) if rated > 0 else None,
        "alert_s": round(alert, 2),
        "longest_negative": None
        if longest is None
        else {
            "start": round(longest["start"], 3),
            "end": round(longest["end"], 3),
            "seconds": round(sum(longest["labels"].values()), 2),
            "label": longest["labels"].most_common(1)[0][0],
        },
        "escalations": escalations,
        "first_label": segs[0]["label"] if segs else None,
        "last_label": segs[-1]["label"] if segs else None,
    }


def table(summary: dict) -> str:
    """The summary for people: a block per track."""
    lines = []
    for track, t in summary.items():
        share = "  ".join(f"{k} {v:.0%}" for k, v in list(t["label_share"].items())[:4])
        lines += [
            f"{'channel' if isinstance(track, int) else 'track'} {track}: {t['segments']} "
            f"segment{'s' if t['segments'] != 1 else ''}, "
            f"{t['speech_s']:.1f} s of speech, mean confidence {t['mean_confidence']:.2f}",
            f"  share of speech   {share}",
            f"  first → last      {t['first_label']} → {t['last_label']}",
        ]
        if t["mean_arousal"] is not None:
            lines.append(
                f"  arousal           mean {t['mean_arousal']:.2f}; negative and aroused "
                f"{t['alert_s']:.1f} s"
            )
        n = t["longest_negative"]
        if n:
            lines.append(
                f"  longest negative  {n['label']} {clock(n['start'], 1)}–{clock(n['end'], 1)} "
                f"({n['seconds']:.1f} s of speech)"
            )
        if t["escalations"]:
            lines.append(
                "  escalations       "
                + ", ".join(
                    f"{clock(x['at'], 1)} {x['after']} → {x['label']}" for x in t["escalations"]
                )
            )
    return "\n".join(lines) if lines else "no speech"


def write_csv(summary: dict, out) -> None:
    """The summary as CSV, a row per track: the figures, then each label's share of speech."""
    labels = sorted({label for t in summary.values() for label in t["label_share"]})
    rows = csv.writer(out, lineterminator="\n")
    figures = ["segments", "speech_s", "mean_confidence", "mean_arousal", "alert_s"]
    rows.writerow(
        ["track", *figures, "longest_negative_s", "longest_negative_label", "escalations"]
        + ["first_label", "last_label", *(f"share_{label}" for label in labels)]
    )
    for track, t in summary.items():
        longest = t["longest_negative"] or {}
        rows.writerow(
            [track, *(t[k] for k in figures), longest.get("seconds"), longest.get("label")]
            + [len(t["escalations"]), t["first_label"], t["last_label"]]
            + [t["label_share"].get(label, 0.0) for label in labels]
        )
