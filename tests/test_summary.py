"""The per-call summary on a scripted call, and through `rtser file --summary`."""

import json
import subprocess
import sys

from conftest import ROOT

from rtser.pipeline.events import Event
from rtser.report.summary import summarize, table


def seg(ch, start, end, label, p=0.8):
    return Event("segment", ch, start, end, "en", label, {label: p, "other": 1 - p}, 0)


SCRIPT = [
    seg(0, 0.0, 2.0, "neutral", 0.9),
    Event("label", 0, 0.0, 1.0, "en", "anger", {"anger": 1.0}, 1),
    seg(0, 3.0, 4.0, "anger", 0.6),
    seg(0, 4.5, 6.5, "sadness", 0.7),  # one negative stretch, 3.0-6.5
    seg(0, 8.0, 9.0, "happiness"),
    seg(0, 10.0, 11.0, "fear"),  # a second escalation, shorter
    seg(1, 1.0, 2.0, "neutral"),
]


def test_shares_confidence_stretches_and_escalations():
    s = summarize(SCRIPT)
    a = s[0]
    assert a["segments"] == 5 and a["speech_s"] == 7.0
    assert a["label_share"] == {
        "neutral": round(2 / 7, 3),
        "sadness": round(2 / 7, 3),
        "anger": round(1 / 7, 3),
        "happiness": round(1 / 7, 3),
        "fear": round(1 / 7, 3),
    }
    assert a["mean_confidence"] == round((2 * 0.9 + 1 * 0.6 + 2 * 0.7 + 0.8 + 0.8) / 7, 3)
    # 3.0 s of negative speech in 3.0-6.5: the pause inside the stretch does not count
    assert a["longest_negative"] == {"start": 3.0, "end": 6.5, "seconds": 3.0, "label": "sadness"}
    assert a["escalations"] == [
        {"at": 3.0, "label": "anger", "after": "neutral"},
        {"at": 10.0, "label": "fear", "after": "happiness"},
    ]
    assert (a["first_label"], a["last_label"]) == ("neutral", "fear")
    assert s[1]["longest_negative"] is None and s[1]["escalations"] == []
    assert "escalations" in table(s) and "00:03.0 neutral → anger" in table(s)


def test_negative_labels_are_configurable():
    s = summarize(SCRIPT, negative=["sadness"])[0]
    assert s["longest_negative"]["seconds"] == 2.0 and [x["label"] for x in s["escalations"]] == [
        "sadness"
    ]


def test_server_events_are_keyed_by_track():
    events = [
        {
            "type": "segment",
            "track": "customer",
            "start": 0.0,
            "end": 1.0,
            "label": "anger",
            "probs": {"anger": 1.0},
        }
    ]
    assert summarize(events)["customer"]["first_label"] == "anger"


def test_rtser_file_summary(data_dir):
    example = ROOT / "examples" / "ravdess-anger-actor01.flac"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtser",
            "file",
            example,
            "--lang",
            "en",
            "--summary",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["0"]
    assert s["first_label"] == "anger" and s["label_share"]["anger"] == 1.0 and s["turns"] == 1
    r = subprocess.run(
        [sys.executable, "-m", "rtser", "file", example, "--lang", "en", "--summary"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.stdout.startswith("channel 0: 1 turn,") and "longest negative  anger" in r.stdout


def test_arousal_is_summarised_and_only_aroused_negative_speech_alerts():
    events = [
        Event("segment", 0, 0.0, 2.0, "en", "neutral", {"neutral": 0.9}, 0, arousal=0.3),
        Event("segment", 0, 2.0, 3.0, "en", "anger", {"anger": 0.8}, 1, arousal=0.9),
        Event("segment", 0, 3.0, 5.0, "en", "sadness", {"sadness": 0.8}, 2, arousal=0.2),
    ]
    s = summarize(events)[0]
    assert s["mean_arousal"] == round((2 * 0.3 + 0.9 + 2 * 0.2) / 5, 3)
    assert s["alert_s"] == 1.0  # the angry second; the tired sadness raises no alert
    assert "arousal" in table({0: s})
    assert summarize(SCRIPT)[0]["mean_arousal"] is None  # no arousal rated: none reported
