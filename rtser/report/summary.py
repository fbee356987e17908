"""A call's summary per track (or channel), from its final turns: the share of speech time of
each label, the mean confidence and arousal, the longest stretch of negative emotion, the
escalation moments, the first and last labels and each side's talk time; and the call's
conversation cues (``conversation``): overlap, interruptions, silences. One summary for the stream,
``rtser file --summary``, ``rtser serve`` and ``rtser batch``."""

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


SILENCE_S = 5.0  # dead air: a silence longer than this on every side is counted
INTERRUPTION_S = 0.5  # one side starts while the other holds the turn, for at least this long


def _by_track(events: Iterable[Event | dict]) -> dict:
    """``{track: {"segment": [...], "turn": [...]}}``, each sorted by start."""
    tracks: dict = {}
    for e in map(_fields, events):
        if e["type"] in ("segment", "turn"):
            tracks.setdefault(e["track"], {"segment": [], "turn": []})[e["type"]].append(e)
    for kinds in tracks.values():
        for spans in kinds.values():
            spans.sort(key=lambda s: s["start"])
    return tracks


def summarize(events: Iterable[Event | dict], negative: Iterable[str] = NEGATIVE) -> dict:
    """``{track: {...}}`` over each track's final ``turn`` events (its ``segment`` events where a
    log holds no turns): ``Event`` objects are keyed by channel, the server's event dicts by their
    ``track``. ``talk_s`` is a track's talk time (its turns, their short pauses included, as a
    listener counts them), ``talk_ratio`` its share of every track's.

    >>> summarize(events)[0]["label_share"]
    {'neutral': 0.62, 'anger': 0.38}
    """
    tracks = _by_track(events)
    talk = {
        t: sum(s["end"] - s["start"] for s in k["turn"] or k["segment"]) for t, k in tracks.items()
    }
    total = sum(talk.values())
    out = {}
    for track, kinds in tracks.items():
        out[track] = {
            **_track(kinds["turn"] or kinds["segment"], set(negative)),
            "segments": len(kinds["segment"]),
            "turns": len(kinds["turn"]),
            "talk_s": round(talk[track], 2),
            "talk_ratio": round(talk[track] / total, 3) if total > 0 else None,
        }
    return out


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The time covered by ``spans``, as sorted disjoint spans."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        last_start, last_end = merged[-1] if merged else (start, float("-inf"))
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def conversation(events: Iterable[Event | dict]) -> dict:
    """A call's cues from its tracks' speech (segments) and turns, language-independent:
    ``overlap_s`` (both sides speaking), ``interruptions`` (a side starts while another holds the
    turn, overlapping it by ``INTERRUPTION_S`` or more; by track in ``interrupted_by``),
    ``longest_silence_s`` and ``silences_over_5s`` (no side speaking, between the first and the
    last speech)."""
    tracks = _by_track(events)
    speech = {
        t: _union([(s["start"], s["end"]) for s in k["segment"] or k["turn"]])
        for t, k in tracks.items()
    }
    turns = {
        t: [(s["start"], s["end"]) for s in k["turn"] or k["segment"]] for t, k in tracks.items()
    }
    overlap = 0.0
    names = list(speech)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            overlap += sum(
                max(0.0, min(x1, y1) - max(x0, y0)) for x0, x1 in speech[a] for y0, y1 in speech[b]
            )
    interrupted_by = {t: 0 for t in turns}
    for t, mine in turns.items():
        for other, theirs in turns.items():
            if other == t:
                continue
            for s0, s1 in mine:  # t starts while ``other`` holds its turn
                if any(o0 < s0 < o1 and min(s1, o1) - s0 >= INTERRUPTION_S for o0, o1 in theirs):
                    interrupted_by[t] += 1
    everyone = _union([span for spans in speech.values() for span in spans])
    gaps = [b0 - a1 for (_, a1), (b0, _) in zip(everyone, everyone[1:])]
    return {
        "overlap_s": round(overlap, 2),
        "interruptions": sum(interrupted_by.values()),
        "interrupted_by": {str(t): n for t, n in interrupted_by.items()},
        "longest_silence_s": round(max(gaps, default=0.0), 2),
        "silences_over_5s": sum(g > SILENCE_S for g in gaps),
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
            "label": max(longest["labels"], key=longest["labels"].get),
        },
        "escalations": escalations,
        "first_label": segs[0]["label"] if segs else None,
        "last_label": segs[-1]["label"] if segs else None,
    }


def table(summary: dict, call: dict | None = None) -> str:
    """The summary for people: a block per track, then the call's cues (``conversation``)."""
    lines = []
    for track, t in summary.items():
        share = "  ".join(f"{k} {v:.0%}" for k, v in list(t["label_share"].items())[:4])
        ratio = (
            ""
            if t["talk_ratio"] is None or len(summary) < 2
            else f" ({t['talk_ratio']:.0%} of the talk)"
        )
        lines += [
            f"{'channel' if isinstance(track, int) else 'track'} {track}: {t['turns']} "
            f"turn{'s' if t['turns'] != 1 else ''}, {t['talk_s']:.1f} s of talk{ratio}, "
            f"mean confidence {t['mean_confidence']:.2f}",
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
    if lines and call:
        lines.append(
            f"call: overlap {call['overlap_s']:.1f} s, {call['interruptions']} interruption"
            f"{'s' * (call['interruptions'] != 1)}, longest silence "
            f"{call['longest_silence_s']:.1f} s, {call['silences_over_5s']} over 5 s"
        )
    return "\n".join(lines) if lines else "no speech"


CALL_CUES = ("overlap_s", "interruptions", "longest_silence_s", "silences_over_5s")


def write_csv(summary: dict, out, call: dict) -> None:
    """The summary as CSV, a row per track: its figures, the call's cues (the same on every row),
    then each label's share of speech."""
    labels = sorted({label for t in summary.values() for label in t["label_share"]})
    rows = csv.writer(out, lineterminator="\n")
    figures = ["turns", "segments", "talk_s", "talk_ratio", "mean_confidence", "mean_arousal"]
    rows.writerow(
        ["track", *figures, "alert_s", "longest_negative_s", "longest_negative_label"]
        + ["escalations", "first_label", "last_label", *CALL_CUES]
        + [f"share_{label}" for label in labels]
    )
    for track, t in summary.items():
        longest = t["longest_negative"] or {}
        rows.writerow(
            [track, *(t[k] for k in figures), t["alert_s"], longest.get("seconds")]
            + [longest.get("label"), len(t["escalations"]), t["first_label"], t["last_label"]]
            + [call[k] for k in CALL_CUES]
            + [t["label_share"].get(label, 0.0) for label in labels]
        )
