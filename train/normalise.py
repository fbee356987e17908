"""Does normalising features per speaker (per stream, at run time) help unseen speakers, lines and
corpora? -> docs/results.md (section "normalise").

    python -m train.normalise [--seed 12345]

The shipped chunk features, pooled per clip (whisper-base layers 0-4 time mean + std, GE2E), with
the numpy head of ``rtser enroll`` (``fit_head``). Three ways to see a clip:

- ``none``: as it is;
- ``speaker``: minus the mean of its speaker's clips (an oracle: a stream knows only the past);
- ``running``: minus the mean of the clips its speaker said before it and itself, in a random
  order (what a stream can compute; training speakers use their full mean);
- ``one emotion``: minus the mean of its speaker's clips of the same emotion (a call in which the
  speaker never changes emotion: what the acted corpora, where every speaker acts every emotion
  equally often, never show).

Measured per language over speaker-independent folds (``data.fold_indices``), with the test
speakers' clips clean, through the telephone channel and at 10 dB SNR (``train.augment.TESTS``),
and leave one corpus out on the four core emotions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtser.enroll import fit_head

from . import core, data
from .distill import student_inputs
from .features import CLEAN
from .metrics import ua

ROOT = Path(__file__).resolve().parents[1]
MODES = ("none", "speaker", "running", "one emotion")
CONDITIONS = (CLEAN, "tel", "snr10")


def normalised(
    feats: dict[str, np.ndarray],
    speakers: np.ndarray,
    mode: str,
    test: np.ndarray,
    rng,
    y: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Training rows (not ``test``) always use their speaker's full mean; test rows as ``mode`` says
    (``y``: labels, for ``one emotion``)."""
    if mode == "none":
        return feats
    out = {n: x.copy() for n, x in feats.items()}
    groups = (
        speakers
        if mode != "one emotion"
        else np.where(test, np.char.add(speakers.astype(str), y.astype(str)), speakers)
    )
    for s in np.unique(groups):
        rows = np.flatnonzero(groups == s)
        if mode == "running" and test[rows].all():
            rows = rng.permutation(rows)
            for n, x in feats.items():
                out[n][rows] = x[rows] - np.cumsum(x[rows], 0) / np.arange(
                    1, len(rows) + 1
                ).reshape(-1, *[1] * (x.ndim - 1))
        else:
            for n, x in feats.items():
                out[n][rows] = x[rows] - x[rows].mean(0)
    return out


def within_corpus(seed: int) -> dict:
    res = {}
    for corpus in data.corpora():
        items = data.clips(corpus)
        labels = data.labels(items)
        y = np.array([labels.index(c.label) for c in items])
        spk = np.array([c.speaker for c in items])
        views = {cond: student_inputs(corpus, cond) for cond in CONDITIONS}
        scores = {(m, c): [] for m in MODES for c in CONDITIONS}
        for tr, te in data.fold_indices(list(spk)):
            test = np.zeros(len(y), bool)
            test[te] = True
            for mode in MODES:
                if mode in ("none", "speaker"):  # the others train as "speaker"
                    train_x = normalised(views[CLEAN], spk, mode, np.zeros(len(y), bool), None)
                    head = fit_head(
                        {n: x[tr] for n, x in train_x.items()}, y[tr], len(labels), seed=seed
                    )
                for cond in CONDITIONS:
                    test_x = normalised(
                        views[cond], spk, mode, test, np.random.default_rng(seed), y
                    )
                    pred = head.probs({n: x[te] for n, x in test_x.items()}).argmax(1)
                    scores[mode, cond].append(ua(y[te], pred, len(labels)))
        lang = items[0].language
        res[lang] = {m: {c: float(np.mean(scores[m, c])) for c in CONDITIONS} for m in MODES}
        print(lang, res[lang], flush=True)
    return res


def across_corpora(seed: int) -> dict:
    feats, y, corpus = core.core_dataset()
    spk = np.array([c.speaker for c in core.core_clips()])
    res = {}
    for mode in MODES:
        for held in np.unique(corpus):
            te = corpus == held
            x = normalised(feats, spk, mode, te, np.random.default_rng(seed), y)
            head = fit_head({n: v[~te] for n, v in x.items()}, y[~te], len(core.CORE), seed=seed)
            res.setdefault(mode, {})[str(held)] = ua(
                y[te], head.probs({n: v[te] for n, v in x.items()}).argmax(1), len(core.CORE)
            )
        print("any", mode, res[mode], flush=True)
    return res


def main() -> None:
    from .markdown import machine, write_json, write_section

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    t0 = time.time()
    within, across = within_corpus(args.seed), across_corpora(args.seed)
    write_json("normalise", {"within": within, "across": across})
    lines = [
        "## Normalising per speaker (`python -m train.normalise`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}, run time {time.time() - t0:.0f} s. The shipped "
        "chunk features pooled per clip (whisper-base layers 0–4 time mean + std, GE2E), the "
        "numpy head of `rtser enroll`, trained on clean clips; speaker-independent folds "
        "(`data.fold_indices`). **none**: features as they are; **speaker**: minus the mean of "
        "the speaker's clips (an oracle); **running**: test clips minus the mean of what their "
        "speaker said so far (clips in a random order), as a stream could do; **one emotion**: "
        "test clips minus the mean of their speaker's clips of the same emotion (a caller who "
        "stays angry all call). UA per language, test speakers clean / through 8 kHz μ-law / "
        "at 10 dB SNR:",
        "",
        "| lang | " + " | ".join(f"{m}: {c}" for m in MODES for c in CONDITIONS) + " |",
        "|---|" + "---|" * (len(MODES) * len(CONDITIONS)),
    ]
    for lang, r in within.items():
        lines.append(
            f"| {lang} | " + " | ".join(f"{r[m][c]:.3f}" for m in MODES for c in CONDITIONS) + " |"
        )
    held = list(across["none"])
    lines += [
        "",
        f"The `{core.LANG}` head, leave one corpus out (UA, 4 core emotions):",
        "",
        "| normalisation | " + " | ".join(held) + " | mean |",
        "|---|" + "---|" * (len(held) + 1),
    ]
    for m in MODES:
        lines.append(
            f"| {m} | "
            + " | ".join(f"{across[m][h]:.3f}" for h in held)
            + f" | {np.mean(list(across[m].values())):.3f} |"
        )
    write_section(ROOT / "docs" / "results.md", "normalise", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
