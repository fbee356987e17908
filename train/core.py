"""A language-agnostic head on the four core emotions, for languages without a head of their own.

    python -m train.core        # -> docs/results.md (section "core"), artifacts/core.json

Clips labelled anger, happiness, neutral or sadness from every corpus in ../shared/data, on the
shipped students' inputs (the runtime's chunk features, time mean + std per layer of whisper-base
and the GE2E embedding). The head is the numpy head ``rtser enroll`` fits (class-weighted softmax
regression on learned layer weights), so it ships as ``head-any.npz`` (``--lang any``).
Leave-one-corpus-out: trained on three corpora, tested on every speaker of the fourth, which is
also a language the head never heard. The head is meant for corpora it never heard, so its weight
decay is chosen for that: by leave-one-corpus-out among the training corpora (nested inside the
reported leave-one-corpus-out), and for the shipped head among all four.

``emotions_head`` is its wider sibling, not a language: every emotion any corpus labels, which the
classes of a language enrolled with ``rtser enroll`` lean on by name (``emotions.npz`` in the
bundle).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtser.enroll import fit_head
from rtser.pipeline.heads import NumpyHead

from . import data
from .distill import STUDENT, TRAIN_VIEWS, student_inputs
from .features import CLEAN
from .metrics import ua, wa

ROOT = Path(__file__).resolve().parents[1]
CORE = ["anger", "happiness", "neutral", "sadness"]
LANG = "any"
L2_GRID = (0.01, 0.03, 0.1, 0.3)  # the head's weight decay, chosen by leave-one-corpus-out
FIXED_L2 = 0.01  # the weight decay the head had before it was chosen
EMOTIONS_L2 = 0.1  # the enrolment prior's (``emotions_head``): the any head's, not chosen again


def emotions_head(corpora: list[str], seed: int = data.SEED) -> tuple[NumpyHead, list[str]]:
    """A head over every emotion that any of ``corpora`` labels, trained on their clean clips and
    training views: what ``rtser enroll`` lets an enrolled language's classes lean on, by name."""
    labels = sorted({c.label for k in corpora for c in data.clips(k)})
    views = (CLEAN, *TRAIN_VIEWS)
    feats = [student_inputs(k, v) for k in corpora for v in views]
    y = np.concatenate(
        [np.tile([labels.index(c.label) for c in data.clips(k)], len(views)) for k in corpora]
    )
    return fit_head(
        {n: np.concatenate([f[n] for f in feats]) for n in feats[0]},
        y,
        len(labels),
        l2=EMOTIONS_L2,
        seed=seed,
    ), labels


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
    return (
        {n: np.concatenate(x) for n, x in feats.items()},
        np.array([CORE.index(c.label) for c in clips]),
        np.array([c.corpus for c in clips]),
    )


def fit_views(
    views: list[dict[str, np.ndarray]], y: np.ndarray, rows, l2: float, seed: int = data.SEED
) -> NumpyHead:
    """The head on ``rows`` of the clean clips and of each training view (``views[0]`` is clean)."""
    return fit_head(
        {n: np.concatenate([v[n][rows] for v in views]) for n in views[0]},
        np.tile(y[rows], len(views)),
        len(CORE),
        l2=l2,
        seed=seed,
    )


def held_out_ua(views, y, train: np.ndarray, test: np.ndarray, l2: float, seed: int) -> float:
    """UA on clean clips ``test`` of a head trained on clips ``train`` (boolean masks) and their
    views."""
    pred = (
        fit_views(views, y, train, l2, seed)
        .probs({n: x[test] for n, x in views[0].items()})
        .argmax(1)
    )
    return ua(y[test], pred, len(CORE))


def choose_l2(
    views, y, corpus, rows: np.ndarray, seed: int = data.SEED
) -> tuple[float, dict[float, float]]:
    """The ``L2_GRID`` value with the best mean UA when each corpus among ``rows`` is held out from
    the others in turn, and every value's mean UA."""
    held = np.unique(corpus[rows])
    scores = {
        l2: float(
            np.mean(
                [
                    held_out_ua(views, y, rows & (corpus != c), rows & (corpus == c), l2, seed)
                    for c in held
                ]
            )
        )
        for l2 in L2_GRID
    }
    print(
        "l2 by leave-one-corpus-out over",
        ", ".join(held),
        {k: round(v, 3) for k, v in scores.items()},
        flush=True,
    )
    return max(scores, key=scores.get), scores


def training_views() -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """``core_dataset`` of the clean clips and of each of ``TRAIN_VIEWS``."""
    feats, y, corpus = core_dataset()
    return [feats] + [core_dataset(v)[0] for v in TRAIN_VIEWS], y, corpus


def leave_one_corpus_out(seed: int = data.SEED) -> dict:
    """Per held-out corpus: the head with its weight decay chosen on the other three; and the weight
    decay the shipped head gets, chosen on all four."""
    views, y, corpus = training_views()
    out = {}
    for held in np.unique(corpus):
        te = corpus == held
        l2, _ = choose_l2(views, y, corpus, ~te, seed)
        pred = (
            fit_views(views, y, ~te, l2, seed)
            .probs({n: x[te] for n, x in views[0].items()})
            .argmax(1)
        )
        out[str(held)] = {
            "ua": ua(y[te], pred, len(CORE)),
            "wa": wa(y[te], pred),
            "clips": int(te.sum()),
            "l2": l2,
            "recall": {c: float((pred[y[te] == k] == k).mean()) for k, c in enumerate(CORE)},
            "ua_clean_only": held_out_ua(views[:1], y, ~te, te, l2, seed),
            "ua_fixed_l2": held_out_ua(views, y, ~te, te, FIXED_L2, seed),
        }
        print(held, out[str(held)], flush=True)
    l2, scores = choose_l2(views, y, corpus, np.ones(len(y), bool), seed)
    return {"held_out": out, "l2": l2, "l2_scores": {str(k): v for k, v in scores.items()}}


def main() -> None:
    from .markdown import machine, write_json, write_section

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    t0 = time.time()
    res = leave_one_corpus_out(args.seed)
    write_json("core", res)
    held = res["held_out"]
    langs = {c.corpus: c.language for corpus in data.corpora() for c in data.clips(corpus)[:1]}
    lines = [
        "## A head for any language: four core emotions (`python -m train.core`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}, run time {time.time() - t0:.0f} s. The `{LANG}` "
        f"head (`--lang {LANG}`): {', '.join(CORE)}, on the shipped chunk features (whisper-base "
        "layers 0–4 time mean + std, GE2E), the numpy head of `rtser enroll`. Leave one corpus "
        "out: trained on the other three corpora, tested on every clip of the held-out one (its "
        "speakers, studio and language unseen). UA = mean recall over the four emotions. Trained "
        f"on the clean clips and their degraded views ({', '.join(TRAIN_VIEWS)}: `train.augment`), "
        "like the language heads. Its weight decay (L2) is chosen from "
        f"{', '.join(map(str, L2_GRID))} by leave-one-corpus-out among the three training corpora "
        f"(the held-out one plays no part); the last column is the head with the fixed {FIXED_L2} "
        "it had "
        "before.",
        "",
        "| held-out corpus (language) | clips | UA | WA | "
        + " | ".join(f"recall {c}" for c in CORE)
        + f" | L2 chosen | UA, trained on clean clips only | UA with L2 {FIXED_L2} |",
        "|---|---|---|---|" + "---|" * (len(CORE) + 3),
    ]
    for corpus, r in held.items():
        lines.append(
            f"| {corpus} ({langs[corpus]}) | {r['clips']} | {r['ua']:.3f} | {r['wa']:.3f} | "
            + " | ".join(f"{r['recall'][c]:.2f}" for c in CORE)
            + f" | {r['l2']} | {r['ua_clean_only']:.3f} | {r['ua_fixed_l2']:.3f} |"
        )
    mean = lambda key: np.mean([r[key] for r in held.values()])
    lines.append(
        f"| mean | | {mean('ua'):.3f} | {mean('wa'):.3f} |"
        + " |" * len(CORE)
        + f" | {mean('ua_clean_only'):.3f} | {mean('ua_fixed_l2'):.3f} |"
    )
    lines += [
        "",
        f"The shipped head is trained on all four corpora with L2 {res['l2']}, the value with the "
        "best mean UA when each corpus is held out from the other three in turn ("
        + ", ".join(f"{k}: {v:.3f}" for k, v in res["l2_scores"].items())
        + ").",
    ]
    write_section(ROOT / "docs" / "results.md", "core", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
