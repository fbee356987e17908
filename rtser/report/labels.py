"""The label vocabulary people see: which labels count as negative, and each label's colour. One
place for the summary, the CLI, the plot and the live page (``rtser serve`` hands it to the
page)."""

from __future__ import annotations

NEGATIVE = ("anger", "disgust", "fear", "sadness")
# Negative speech at this arousal or more is what a supervisor is alerted to: an angry or
# frightened caller, not a tired one.
ALERT_AROUSAL = 0.6
PALETTE = {
    "anger": "#e5484d",
    "disgust": "#8f9c2b",
    "fear": "#8e4ec6",
    "sadness": "#3e63dd",
    "happiness": "#f5a524",
    "neutral": "#7c8592",
    "calm": "#12a594",
    "boredom": "#a18072",
    "surprise": "#e93d82",
}


def vocabulary() -> dict:
    """What the live page needs: ``{"negative": [...], "alert_arousal": ..., "palette": {label:
    colour}}``."""
    return {"negative": list(NEGATIVE), "alert_arousal": ALERT_AROUSAL, "palette": PALETTE}


def alerting(label: str, arousal: float | None, negative=NEGATIVE) -> bool:
    """Whether speech with this shown label and arousal is what an alert is about: negative, and
    aroused (without an arousal rating, negative alone)."""
    return label in negative and (arousal is None or arousal >= ALERT_AROUSAL)
