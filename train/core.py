"""A language-agnostic head on the four core emotions, for languages without a head of their own.

    python -m train.core        # -> docs/results.md (section "core"), build/core.json

Clips labelled anger, happiness, neutral or sadness from every corpus in ../shared/data, on the
shipped students' inputs (the runtime's chunk features, time mean + std per layer of whisper-base
and the GE2E embedding). The head is the numpy head ``rtser enroll`` fits (class-weighted softmax
regression on learned layer weights), so it ships as ``head-any.npz`` (``--lang any``).
Leave-one-corpus-out: trained on three corpora, tested on every speaker of the fourth, which is
also a language the head never heard.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtser.enroll import fit_head
from rtser.head import NumpyHead

from . import data
from .distill import STUDENT, TRAIN_VIEWS, student_inputs
from .features import CLEAN
from .metrics import ua, wa

ROOT = Path(__file__).resolve().parents[1]
CORE = ["anger", "happiness", "neutral", "sadness"]
LANG = "any"


def core_clips() -> list[data.Clip]:
    """Every clip of a core emotion, corpus by corpus: the rows of ``core_dataset``."""
    return [c for corpus in data.corpora() for c in data.clips(corpus) if c.label in CORE]


def core_dataset(view: str = CLEAN) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Pooled features ``{bundle input name: (N, ...)}`` (of a degraded ``view`` of the clips, or
    clean), labels (indices into CORE) and corpus of every core-emotion clip (``core_clips``)."""
    feats: dict[str, list] = {name: [] for name in STUDENT.values()}
    for c in data.corpora():
        keep = np.array([i.label in CORE for i in data.clips(c)])
        for name, x in student_inputs(c, view).items():
            feats[name].append(x[keep])
    clips = core_clips()
    return ({n: np.concatenate(x) for n, x in feats.items()}, np.array([CORE.index(c.label) for c in clips]),
            np.array([c.corpus for c in clips]))


def fit(feats: dict[str, np.ndarray], y: np.ndarray, seed: int = data.SEED) -> NumpyHead:
    return fit_head(feats, y, len(CORE), seed=seed)


def fit_views(views: list[dict[str, np.ndarray]], y: np.ndarray, rows, seed: int = data.SEED) -> NumpyHead:
    """The head on ``rows`` of the clean clips and of each training view (``views[0]`` is clean)."""
    return fit({n: np.concatenate([v[n][rows] for v in views]) for n in views[0]}, np.tile(y[rows], len(views)), seed)


def training_views() -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """``core_dataset`` of the clean clips and of each of ``TRAIN_VIEWS``."""
    feats, y, corpus = core_dataset()
    return [feats] + [core_dataset(v)[0] for v in TRAIN_VIEWS], y, corpus


def leave_one_corpus_out(seed: int = data.SEED) -> dict:
    views, y, corpus = training_views()
    feats = views[0]
    out = {}
    for held in np.unique(corpus):
        te = corpus == held
        test = {n: x[te] for n, x in feats.items()}
        pred = fit_views(views, y, ~te, seed).probs(test).argmax(1)
        clean_only = fit_views(views[:1], y, ~te, seed).probs(test).argmax(1)
        out[str(held)] = {"ua": ua(y[te], pred, len(CORE)), "wa": wa(y[te], pred), "clips": int(te.sum()),
                          "recall": {c: float((pred[y[te] == k] == k).mean()) for k, c in enumerate(CORE)},
                          "ua_clean_only": ua(y[te], clean_only, len(CORE))}
        print(held, out[str(held)], flush=True)
    return out


def main() -> None:
    from .markdown import machine, write_json, write_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    t0 = time.time()
    res = leave_one_corpus_out(args.seed)
    write_json("core", res)
    langs = {c.corpus: c.language for corpus in data.corpora() for c in data.clips(corpus)[:1]}
    lines = ["## A head for any language: four core emotions (`python -m train.core`)", "",
             f"Machine: {machine()}. Seed {args.seed}, run time {time.time() - t0:.0f} s. The `{LANG}` head "
             f"(`--lang {LANG}`): {', '.join(CORE)}, on the shipped chunk features (whisper-base layers 0–4 time "
             "mean + std, GE2E), the numpy head of `rtser enroll`. Leave one corpus out: trained on the other "
             "three corpora, tested on every clip of the held-out one (its speakers, studio and language unseen). "
             "UA = mean recall over the four emotions. Trained on the clean clips and their degraded views "
             f"({', '.join(TRAIN_VIEWS)}: `train.augment`), like the language heads.", "",
             "| held-out corpus (language) | clips | UA | WA | " + " | ".join(f"recall {c}" for c in CORE)
             + " | UA, trained on clean clips only |",
             "|---|---|---|---|" + "---|" * (len(CORE) + 1)]
    for corpus, r in res.items():
        lines.append(f"| {corpus} ({langs[corpus]}) | {r['clips']} | {r['ua']:.3f} | {r['wa']:.3f} | "
                     + " | ".join(f"{r['recall'][c]:.2f}" for c in CORE) + f" | {r['ua_clean_only']:.3f} |")
    mean = lambda key: np.mean([r[key] for r in res.values()])  # noqa: E731
    lines.append(f"| mean | | {mean('ua'):.3f} | {mean('wa'):.3f} |" + " |" * len(CORE) + f" {mean('ua_clean_only'):.3f} |")
    write_section(ROOT / "docs" / "results.md", "core", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
