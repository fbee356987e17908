"""The bundle's parts for voices it never heard, re-fitted in place (numpy heads; the language
heads' ONNX graphs stay as they are):

    python bench/strangers.py     # first: leave one corpus out -> artifacts/strangers.json
    python -m export.strangers    # -> rtser/bundle/: any, es, emotions, arousal, calibrations

- ``any``: ``train.strangers.fit_core`` on every corpus with emotion categories;
- ``es``: the Spanish head, ``rtser enroll``'s recipe on esuah (the shared trunk, leaning on the
  emotion head), with its speaker-independent cross-validation;
- ``emotions.npz``: the enrolment prior over every emotion of those corpora;
- ``arousal.npz``: ``train.strangers.fit_arousal`` on every corpus, baved's levels included;
- every language's ``calibration``: fitted on the corpora its head never heard (for ``any``, on
  each corpus's predictions by a head trained without it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rtser.bundle import DEFAULT, Bundle
from rtser.enroll import emotion_map, fit_enrolled
from rtser.pipeline.classifier import Classifier
from rtser.pipeline.heads import NumpyHead, Prior, prior_terms
from train import core, data
from train.markdown import ARTIFACTS, write_section
from train.strangers import (
    CORE,
    OWN,
    categorical,
    fit_arousal,
    fit_calibration,
    fit_core,
    inputs,
    language_log_probs,
)

from .bundle import PRIOR, ROOT, accuracy_table
from .manifest import save

AROUSAL = "arousal.npz"
SPANISH = "esuah"


def any_language(out: Path, seed: int, measured: dict) -> dict:
    corpora = categorical()
    fit_core(corpora, seed).save(out / "head-any.npz")
    held_out = [
        (
            fit_core([c for c in corpora if c != held], seed).log_probs(inputs(held)),
            data.clips(held),
        )
        for held in corpora
    ]
    after = [r["after"]["ua4"] for k, r in measured.get("any", {}).items() if k.endswith(" clean")]
    clips = [c for k in corpora for c in data.clips(k) if c.label in CORE]
    return {
        "labels": list(CORE),
        "head": "head-any.npz",
        "training": {
            "corpus": "+".join(corpora),
            "clips": len(clips),
            "speakers": len({c.speaker for c in clips}),
            "label_counts": {k: sum(c.label == k for c in clips) for k in CORE},
        },
        "metrics": {
            "protocol": "leave one corpus out (python bench/strangers.py)",
            "ua_mean": round(float(np.mean(after)), 4) if after else None,
            "ua_std": round(float(np.std(after)), 4) if after else None,
        },
        "calibration": fit_calibration(held_out, list(CORE)),
    }


def spanish(out: Path, bundle: Bundle) -> tuple[dict, NumpyHead]:
    """The es head as ``rtser enroll`` fits one, on the bundle's trunk, leaning on an emotion head
    of the other corpora; its manifest entry and the head (calibrated by the caller)."""
    clips = data.clips(SPANISH)
    labels = sorted({c.label for c in clips})
    raw = inputs(SPANISH)
    trunk = NumpyHead.load(bundle.shared_trunk())
    # the emotion head it leans on never heard these speakers, so the CV below stays honest
    emotions, names = core.emotions_head([c for c in categorical() if c != SPANISH])
    onehot = emotion_map(labels, names)
    prior = prior_terms(emotions, raw) @ onehot
    y = np.array([labels.index(c.label) for c in clips])
    head, metrics = fit_enrolled(
        {"shared": trunk.features(raw)}, y, [c.speaker for c in clips], len(labels), prior
    )
    head = trunk.with_classifier(head)
    if metrics.get("prior_weight"):
        head.prior = Prior(emotions, metrics["prior_weight"] * onehot)
    head.save(out / "head-es.npz")
    entry = {
        "labels": labels,
        "head": "head-es.npz",
        "training": {
            "corpus": SPANISH,
            "clips": len(clips),
            "speakers": len({c.speaker for c in clips}),
            "label_counts": {k: sum(c.label == k for c in clips) for k in labels},
        },
        "metrics": {**metrics, "protocol": "speaker-independent CV (rtser enroll's recipe)"},
    }
    return entry, head


def refit(out: Path, seed: int = data.SEED) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    strangers = ARTIFACTS / "strangers.json"
    measured = json.loads(strangers.read_text()) if strangers.exists() else {}
    languages = manifest["languages"]
    head, labels = core.emotions_head(categorical(), seed)
    head.save(out / PRIOR)
    manifest["prior"] = {
        "head": PRIOR,
        "labels": labels,
        "l2": core.EMOTIONS_L2,
        "corpora": categorical(),
    }
    fit_arousal(data.corpora(), seed).save(out / AROUSAL)
    manifest["arousal"] = {
        "head": AROUSAL,
        "corpora": data.corpora(),
        "spearman_loco": measured.get("arousal"),
    }
    languages["any"] = any_language(out, seed, measured)
    bundle = Bundle(out, verify=False)  # its files are being rewritten: their hashes come last
    languages["es"], es_head = spanish(out, bundle)
    for lang, own in OWN.items():
        if lang == "es":  # not in the manifest on disk yet
            log_probs = lambda corpus: es_head.log_probs(inputs(corpus))
        else:
            clf = Classifier(bundle, lang)
            log_probs = lambda corpus, clf=clf: language_log_probs(clf, corpus, "clean")
        parts = [(log_probs(c), data.clips(c)) for c in categorical() if c != own]
        languages[lang]["calibration"] = fit_calibration(parts, languages[lang]["labels"])
    save(out, manifest, ["head-any.npz", "head-es.npz", PRIOR, AROUSAL])
    write_section(ROOT / "README.md", "accuracy", accuracy_table(manifest))
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    manifest = refit(args.out, args.seed)
    for lang, spec in manifest["languages"].items():
        print(lang, spec.get("calibration"))


if __name__ == "__main__":
    main()
