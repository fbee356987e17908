"""Enrolment curves -> docs/results.md (section "enroll") and docs/img/enroll.png.

    python bench/enroll.py [--repeats 5] [--seed 12345]

For each corpus in ../shared/data: its speakers are split in two halves (seeded; a pool of
unknown people, ``data.POOLED``, stays on the enrolment side); k = 3, 6, 12, 24 clips per emotion
are drawn from the first half and enrolled with `rtser.enroll.fit_enrolled`
(the numpy head `rtser enroll` fits, its weight decay chosen by speaker-independent CV on the drawn
clips alone) on the shipped int8 encoders' features; UA is measured on every clip of the other
half. The shipped encoders never saw these corpora, and the enrolled head uses no other language's
head, so each language is enrolled into a bundle trained without it.

Two embeddings of a clip are compared: ``shared`` (what `rtser enroll` uses: ``train.shared``'s
trunk, here trained on the other corpora at once, so the held-out corpus's speakers, studio
and language are all new to it) and ``raw`` (the pooled layer statistics themselves). What
`rtser enroll` does also lets the classes lean on the bundle's emotion head by name; here that head
is ``train.core.emotions_head`` of the other corpora with emotion categories.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser.enroll import L2_GRID, PRIOR_WEIGHTS, emotion_map, fit_enrolled, fit_head  # noqa: E402
from rtser.pipeline.heads import prior_terms  # noqa: E402
from train import core, data, shared  # noqa: E402
from train.distill import student_inputs  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402
from train.metrics import ua  # noqa: E402
from train.strangers import categorical  # noqa: E402

SHOTS = (3, 6, 12, 24)
FIXED_L2 = 0.01


def embeddings(corpus: str, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """A corpus's clips as ``rtser enroll`` embeds them (``raw``: the shipped encoders' pooled chunk
    features) and through the shared trunk of the other corpora (``shared``)."""
    raw = student_inputs(corpus)
    trunk = shared.to_numpy(shared.fit([c for c in data.corpora() if c != corpus], seed=seed))
    return {"raw": raw, "shared": {"shared": trunk.features(raw)}}


def emotion_prior(corpus: str, raw: dict[str, np.ndarray], seed: int) -> np.ndarray | None:
    """``rtser enroll``'s prior terms for a corpus's clips and classes, from an emotion head that
    never heard the corpus: ``train.core.emotions_head`` of the other corpora with emotion
    categories (None when fewer than two classes are emotions it knows, as ``rtser enroll``)."""
    head, emotions = core.emotions_head([c for c in categorical() if c != corpus], seed)
    onehot = emotion_map(data.labels(data.clips(corpus)), emotions)
    return None if onehot is None else prior_terms(head, raw) @ onehot


def enrolled(pooled, y, speakers, n_classes, prior=None):
    """What ``rtser enroll`` fits, and the weight it gives the prior."""
    head, metrics = fit_enrolled(pooled, y, speakers, n_classes, prior)
    return head, metrics.get("prior_weight") or 0.0


def fixed_l2(pooled, y, speakers, n_classes, prior=None):
    """What ``rtser enroll`` fitted before it chose its weight decay."""
    return fit_head(pooled, y, n_classes, l2=FIXED_L2), 0.0


def curve(
    corpus: str,
    feats: dict[str, np.ndarray],
    repeats: int,
    seed: int,
    fit=enrolled,
    prior: np.ndarray | None = None,
) -> dict:
    items = data.clips(corpus)
    labels = data.labels(items)
    y = np.array([labels.index(c.label) for c in items])
    spk = np.array([c.speaker for c in items])
    named = np.unique([c.speaker for c in items if not c.pooled])  # a pool is never tested
    out = {k: [] for k in SHOTS}
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        speakers = rng.permutation(named)
        test = np.isin(spk, speakers[len(speakers) // 2 :])
        for k in SHOTS:
            pick = np.concatenate(
                [rng.permutation(np.flatnonzero(~test & (y == c)))[:k] for c in range(len(labels))]
            )
            if len(np.unique(y[pick])) < 2:
                continue
            head, weight = fit(
                {n: x[pick] for n, x in feats.items()},
                y[pick],
                spk[pick],
                len(labels),
                None if prior is None else prior[pick],
            )
            scores = head.log_probs({n: x[test] for n, x in feats.items()})
            if weight:
                scores = scores + weight * prior[test]
            out[k].append(ua(y[test], scores.argmax(1), len(labels)))
    return {
        "labels": labels,
        "ua": {k: (float(np.mean(v)), float(np.std(v))) for k, v in out.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args()
    t0 = time.time()
    res, gain = {}, {}
    for corpus in data.corpora():
        feats = embeddings(corpus, args.seed)
        curves = {kind: curve(corpus, x, args.repeats, args.seed) for kind, x in feats.items()}
        curves["fixed"] = curve(corpus, feats["shared"], args.repeats, args.seed, fixed_l2)
        curves["prior"] = curve(
            corpus,
            feats["shared"],
            args.repeats,
            args.seed,
            prior=emotion_prior(corpus, feats["raw"], args.seed),
        )
        res[corpus] = curves["prior"]  # what rtser enroll does
        gain[corpus] = curves
        print(corpus, {kind: c["ua"] for kind, c in curves.items()}, flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (corpus, r) in enumerate(res.items()):
        m = [r["ua"][k][0] for k in SHOTS]
        s = [r["ua"][k][1] for k in SHOTS]
        line = ax.errorbar(SHOTS, m, yerr=s, marker="o", capsize=3, label=corpus)
        ax.axhline(1 / len(r["labels"]), color=line[0].get_color(), ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(SHOTS, [str(k) for k in SHOTS])
    ax.set_xlabel("enrolled clips per emotion")
    ax.set_ylabel("UA on held-out speakers")
    ax.set_title("rtser enroll: new language from few clips (dotted: chance)")
    ax.legend()
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "enroll.png", dpi=100)
    rows = [
        f"| {c} | {len(r['labels'])} | {1 / len(r['labels']):.3f} | "
        + " | ".join(f"{r['ua'][k][0]:.3f} ± {r['ua'][k][1]:.3f}" for k in SHOTS)
        + " |"
        for c, r in res.items()
    ]
    write_section(
        ROOT / "docs" / "results.md",
        "enroll",
        "\n".join(
            [
                "## Enrolling a new language (`python bench/enroll.py`)",
                "",
                f"Machine: {machine()}. Seed {args.seed}, {args.repeats} repeats (different "
                f"speaker halves and clips), run time {time.time() - t0:.0f} s. Enrolled as `rtser "
                "enroll` does: the shipped int8 whisper-base + GE2E chunk features, pooled, "
                "through a shared trunk (`train.shared`, here trained on the other corpora "
                "at once, clean and degraded views, one classifier per corpus, so the held-out "
                "corpus is new to it; the bundle's trunk is trained on EmoDB, EMOVO, RAVDESS and "
                "URDU), then its numpy "
                f"classifier, its weight decay chosen from {', '.join(map(str, L2_GRID))} by "
                "speaker-independent CV on the enrolled clips alone "
                "(`rtser.enroll.fit_enrolled`), and by the same CV how far the classes lean on "
                f"the bundle's emotion head by name (weight {', '.join(map(str, PRIOR_WEIGHTS))}; "
                "here `train.core.emotions_head` of the other corpora with emotion categories: "
                "every emotion they label; baved's arousal levels are none, so it enrols without "
                "it); enrolment speakers are disjoint from test speakers (emospeech's pool of "
                "unknown people is only enrolled, never tested). UA mean ± std over repeats.",
                "",
                "| corpus | classes | chance | "
                + " | ".join(f"{k} / emotion" for k in SHOTS)
                + " |",
                "|---|---|---|" + "---|" * len(SHOTS),
                *rows,
                "",
                "![enroll](img/enroll.png)",
                "",
                "Why the trunk: the same clips enrolled on the raw layer statistics (what `rtser "
                "enroll` did before) → on "
                "the trunk's output, UA:",
                "",
                *gain_table(gain, "raw", "shared"),
                "",
                "Why the weight decay is chosen: the same clips on the trunk's output with the "
                f"fixed {FIXED_L2} (what `rtser enroll` did before) → chosen by "
                "speaker-independent CV on the "
                "enrolled clips, UA:",
                "",
                *gain_table(gain, "fixed", "shared"),
                "",
                "Why lean on the emotion head: the same clips on the trunk's output, weight decay "
                "chosen, without it → "
                "with it, the weight chosen by the same CV (what `rtser enroll` does), UA:",
                "",
                *gain_table(gain, "shared", "prior"),
                "| mean | "
                + " | ".join(
                    f"{np.mean([g['shared']['ua'][k][0] for g in gain.values()]):.3f} → "
                    f"{np.mean([g['prior']['ua'][k][0] for g in gain.values()]):.3f}"
                    for k in SHOTS
                )
                + " |",
            ]
        ),
        title="# Results\n",
    )


def gain_table(gain: dict, before: str, after: str) -> list[str]:
    """Per corpus and number of shots: UA of the ``before`` recipe → the ``after`` one."""
    return [
        "| corpus | " + " | ".join(f"{k} / emotion" for k in SHOTS) + " |",
        "|---|" + "---|" * len(SHOTS),
        *[
            f"| {c} | "
            + " | ".join(f"{g[before]['ua'][k][0]:.3f} → {g[after]['ua'][k][0]:.3f}" for k in SHOTS)
            + " |"
            for c, g in gain.items()
        ],
    ]


if __name__ == "__main__":
    main()
