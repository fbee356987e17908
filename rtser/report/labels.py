"""The label vocabulary people see: which labels count as negative, and each label's colour. One
place for the summary, the CLI, the plot and the live page (``rtser serve`` hands it to the
page)."""

from __future__ import annotations

NEGATIVE = ("anger", "disgust", "fear", "sadness")
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
    """What the live page needs: ``{"negative": [...], "palette": {label: colour}}``."""
    return {"negative": list(NEGATIVE), "palette": PALETTE}
