"""Speakers of another corpus through each shipped language head -> docs/results.md (section
"crosscorpus").

    python bench/crosscorpus.py [--out docs/results.md]

A new user tries heads on speech from elsewhere: another English corpus through the English
head, Polish through the German head, on the four core emotions (argmax over those four). This
does the same with what is here: every core-emotion clip (anger, happiness, neutral, sadness) of
each corpus, clean and through 8 kHz μ-law, through each shipped language head trained on another
corpus, cut and encoded as ``Recognizer.predict`` does (the heads read the same encoders, so each
clip is encoded once). A head is never scored on its own corpus, but the multi-domain half of
every head was trained together with the other languages' corpora, so these speakers are less new
to it than a held-out corpus is to the ``any`` head (section "core", ``python -m train.core``).
Reported: 4-class UA, neutral's recall, and the share of clips that get the head's most frequent
answer (1.0: one answer for everyone).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser import Recognizer  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.audio.resample import resample  # noqa: E402
from rtser.pipeline.features import clip_features  # noqa: E402
from train import augment, data  # noqa: E402
from train.core import CORE  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402
from train.metrics import ua  # noqa: E402

HEADS = {
    "de": "emodb",
    "it": "emovo",
    "en": "ravdess",
    "ur": "urdu",
}  # language head -> its training corpus
CONDITIONS = ("clean", "8 kHz μ-law")


def heard(audio: np.ndarray, condition: str) -> np.ndarray:
    """The clip as the runtime gets it at 16 kHz."""
    if condition == "clean":
        return audio
    narrow, sr = augment.g711(audio)
    return resample(narrow, sr, augment.SR)


def core_predictions(
    recs: dict[str, Recognizer], corpus: str, condition: str
) -> tuple[np.ndarray, dict, list]:
    """True core-emotion indices of the corpus's core clips, each head's argmax over the four, and
    the clips the VAD found no speech in (``predict`` gives them no label)."""
    first = next(iter(recs.values()))
    columns = {lang: [rec.labels.index(e) for e in CORE] for lang, rec in recs.items()}
    y, preds, silent = [], {lang: [] for lang in recs}, []
    for clip in (c for c in data.clips(corpus) if c.label in CORE):
        audio = heard(load(clip.path), condition)
        bounds = first.vad.speech_bounds(audio)
        if bounds is None:
            silent.append(clip)
            continue
        features = clip_features(
            first.classifier.encoder, audio, *bounds
        )  # every head reads the same encoders
        y.append(CORE.index(clip.label))
        for lang, rec in recs.items():
            preds[lang].append(int(np.argmax(rec.classifier.scores(features).probs[columns[lang]])))
    return np.array(y), {lang: np.array(p) for lang, p in preds.items()}, silent


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    neutral = y == CORE.index("neutral")
    return {
        "ua": ua(y, pred, len(CORE)),
        "neutral": float(np.mean(pred[neutral] == CORE.index("neutral"))),
        "top": float(np.bincount(pred, minlength=len(CORE)).max() / len(pred)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    args = ap.parse_args()
    t0 = time.time()
    recs = {lang: Recognizer(lang) for lang in HEADS}
    assert len({tuple(r.classifier.inputs) for r in recs.values()}) == 1, (
        "the heads read different encoders"
    )
    res: dict[tuple[str, str], dict] = {}
    for condition in CONDITIONS:
        for corpus in data.corpora():
            y, preds, silent = core_predictions(recs, corpus, condition)
            res[(condition, corpus)] = {
                "clips": len(y),
                "silent": [c.path.name for c in silent],
                "heads": {
                    lang: scores(y, pred) for lang, pred in preds.items() if HEADS[lang] != corpus
                },
            }
            print(condition, corpus, res[(condition, corpus)], flush=True)
    lines = [
        "## Speakers of another corpus through each language head (`python bench/crosscorpus.py`)",
        "",
        f"Machine: {machine()}. Every clip of the four core emotions of a corpus, cut and encoded "
        "as `Recognizer.predict` does, through each shipped language head trained on another "
        "corpus; argmax over the four (as a new user tries another English corpus through "
        "`--lang en` and Polish through `--lang de`). Cell: 4-class UA, neutral's recall, and the "
        "share of clips given the most frequent answer (1.0: one answer for everyone). Clips in "
        "which the VAD finds no speech get no label and are left out. The multi-domain half of "
        "every language head was trained together with the other corpora (under their own "
        "languages' labels), so these speakers are less new to it than a held-out corpus is to "
        "the `any` head above. No training, so no seed. Run time "
        f"{time.time() - t0:.0f} s.",
        "",
    ]
    for condition in CONDITIONS:
        lines += [
            f"**{condition}**",
            "",
            "| speakers of | clips (no speech found) | "
            + " | ".join(f"`--lang {lang}`" for lang in HEADS)
            + " |",
            "|---|---|" + "---|" * len(HEADS),
        ]
        for corpus in data.corpora():
            r = res[(condition, corpus)]
            cells = [r["heads"].get(lang) for lang in HEADS]
            lines.append(
                f"| {corpus} | {r['clips']} ({len(r['silent'])}) | "
                + " | ".join(
                    "–"
                    if c is None
                    else f"{c['ua']:.3f} (neutral {c['neutral']:.2f}, top {c['top']:.2f})"
                    for c in cells
                )
                + " |"
            )
        silent = [
            f"{corpus}: {', '.join(r['silent'])}"
            for (cond, corpus), r in res.items()
            if cond == condition and r["silent"]
        ]
        lines += ["", "No speech found in: " + ("; ".join(silent) if silent else "none") + ".", ""]
    write_section(args.out, "crosscorpus", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
