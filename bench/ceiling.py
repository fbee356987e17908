"""How much of what a channel costs is information: heads trained on the channel itself ->
docs/results.md (section "ceiling").

    python bench/ceiling.py [--seed 12345]

Per language, on the shipped students' inputs (chunk features pooled per clip: whisper-base layers
0-4 time mean + std, GE2E), the numpy head of ``rtser enroll`` (weight decay 0.1) over the
speaker-independent folds of ``train.data.fold_indices``. UA on the test speakers under each test
condition of ``train.augment.TESTS`` for a head trained on:

- **matched**: the training speakers under that same condition. What is left of the clean UA when
  training knows the channel exactly: the information the features still hold behind it;
- **views**: the training speakers clean and in the degraded views the shipped heads learn from
  (``train.augment.VIEWS``), which do not know the test condition.

A matched head that also loses many points says the channel removes cues that these pooled
features carried, and training that knows the channel does not bring them back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser.enroll import fit_head  # noqa: E402
from train import augment, data  # noqa: E402
from train.distill import TRAIN_VIEWS, student_inputs  # noqa: E402
from train.features import CLEAN  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402
from train.metrics import ua  # noqa: E402

L2 = 0.1
NAMES = {
    "tel": "telephone band + 8 kHz μ-law",
    "snr10": "white noise 10 dB SNR",
    "snr0": "white noise 0 dB SNR",
    "mulaw": "8 kHz μ-law",
}


def held_out_ua(y, folds, n_classes, train_views: list[dict], test_view: dict, seed: int) -> float:
    """UA over the folds of a head trained on the training speakers in every one of
    ``train_views``."""
    pred = np.zeros(len(y), int)
    for train, test in folds:
        head = fit_head(
            {n: np.concatenate([v[n][train] for v in train_views]) for n in test_view},
            np.tile(y[train], len(train_views)),
            n_classes,
            l2=L2,
            seed=seed,
        )
        pred[test] = head.probs({n: x[test] for n, x in test_view.items()}).argmax(1)
    return ua(y, pred, n_classes)


def corpus_ceiling(corpus: str, seed: int) -> dict:
    items = data.clips(corpus)
    labels = data.labels(items)
    y = np.array([labels.index(c.label) for c in items])
    folds = data.fold_indices([c.speaker for c in items], seed=seed)
    score = lambda train_views, test_view: held_out_ua(
        y, folds, len(labels), train_views, test_view, seed
    )
    clean = student_inputs(corpus, CLEAN)
    views = [clean] + [student_inputs(corpus, v) for v in TRAIN_VIEWS]
    out = {"clean": score([clean], clean)}
    for cond in augment.TESTS:
        degraded = student_inputs(corpus, cond)
        out[cond] = {"matched": score([degraded], degraded), "views": score(views, degraded)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    t0 = time.time()
    res = {}
    for corpus in data.corpora():
        res[corpus] = corpus_ceiling(corpus, args.seed)
        print(corpus, res[corpus], flush=True)
    langs = {c: data.clips(c)[0].language for c in res}
    lines = [
        "## What a channel leaves: heads trained on it (`python bench/ceiling.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed} (the folds of `train.data.fold_indices`), run "
        f"time {time.time() - t0:.0f} s. The shipped students' inputs pooled per clip, the numpy "
        f"head of `rtser enroll` (weight decay {L2}), speaker-independent folds. UA points lost "
        "against the same head trained and tested on clean clips, for a head trained on the "
        "training speakers under the test condition itself (**matched**: what the features still "
        "hold behind that channel) and for one trained on clean clips and the degraded views "
        f"({', '.join(TRAIN_VIEWS)}: **views**, the recipe "
        "of the shipped heads).",
        "",
        "| lang | clean UA | "
        + " | ".join(f"{NAMES[c]}: matched | views" for c in augment.TESTS)
        + " |",
        "|---|---|" + "---|---|" * len(augment.TESTS),
    ]
    for corpus, r in res.items():
        loss = lambda u: f"{100 * (u - r['clean']):+.1f}"
        lines.append(
            f"| {langs[corpus]} | {r['clean']:.3f} | "
            + " | ".join(f"{loss(r[c]['matched'])} | {loss(r[c]['views'])}" for c in augment.TESTS)
            + " |"
        )
    write_section(ROOT / "docs" / "results.md", "ceiling", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
