"""The speech gate (``train.speech``), measured leaving one corpus out, then fitted on everything
and added to the bundle in place:

    python -m export.speech    # -> rtser/bundle/speech.npz, the manifest's "speech",
                               #    docs/results.md (section "speech")
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rtser.bundle import DEFAULT
from train import data
from train.markdown import machine, write_section
from train.speech import MAX_LOST, MUSIC, TEST_VIEWS, fit_shipped, leave_one_out

from .bundle import ROOT
from .manifest import save

GATE = "speech.npz"


def report(measured: dict, seed: int) -> str:
    thresholds = measured["thresholds"]
    chosen = thresholds.index(measured["threshold"])
    worst = np.max(list(measured["lost"].values()), axis=0)
    lines = [
        "## Speech or music: the gate (`python -m export.speech`)",
        "",
        f"{machine()}, seed {seed}. The VAD takes some music for speech (loud and periodic, as a "
        "raised voice is). The gate reads the Whisper states the heads read and says whether a "
        "span is speech; a segment or rolling label it hears as music gives no event and joins no "
        "turn, and `predict` gives no label. It learns music from Debian's game soundtracks "
        f"({', '.join(f'`{m}`' for m in MUSIC)}: the stretches the VAD takes for speech, and "
        "random excerpts, clean and through 8 kHz μ-law) and speech from every corpus. Asterisk's "
        "hold music is never learnt: `python bench/calls.py` measures the gate on it.",
        "",
        f"The threshold ({measured['threshold']:.2f}, probability of speech) is the highest that "
        f"loses at most {MAX_LOST:.0%} of any held-out corpus's clips in any view, each corpus "
        "held out in turn. Music caught: the share of a package's spans (the VAD's stretches and "
        "the excerpts) that a gate trained without that package hears as music.",
        "",
        "| threshold | worst corpus's clips lost | "
        + " | ".join(f"unheard music caught: `{m}`" for m in measured["caught"])
        + " |",
        "|---|---|" + "---|" * len(measured["caught"]),
    ]
    for i, t in enumerate(thresholds):
        mark = " (shipped)" if i == chosen else ""
        caught = " | ".join(f"{v[i]:.3f}" for v in measured["caught"].values())
        lines.append(f"| {t:.2f}{mark} | {worst[i]:.3f} | {caught} |")
    lines += [
        "",
        f"Speech clips lost at {measured['threshold']:.2f}, each corpus held out:",
        "",
        "| corpus | " + " | ".join(TEST_VIEWS) + " |",
        "|---|" + "---|" * len(TEST_VIEWS),
    ]
    for corpus in data.corpora():
        row = [f"{measured['lost'][f'{corpus} {v}'][chosen]:.3f}" for v in TEST_VIEWS]
        lines.append(f"| {corpus} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    measured = leave_one_out(args.seed)
    fit_shipped(args.seed).save(args.out / GATE)
    manifest = json.loads((args.out / "manifest.json").read_text())
    manifest["speech"] = {
        "head": GATE,
        "threshold": measured["threshold"],
        "music": list(MUSIC),
        "max_lost_loco": MAX_LOST,
    }
    save(args.out, manifest, [GATE])
    write_section(ROOT / "docs" / "results.md", "speech", report(measured, args.seed))
    print("threshold", measured["threshold"])


if __name__ == "__main__":
    main()
