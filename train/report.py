"""The paper's models, compared honestly -> docs/results.md (section "model").

    python -m train.report [--epochs 30] [--seed 12345] [--teacher-only]

Per language, speaker-independent folds (4: leave-one-speaker-out for EMOVO's 4 speakers, else
4 speaker groups; round r tests fold r of every language at once), UA/WA mean ± std over folds:
(a) openSMILE eGeMAPS + SVM, (b) best single-layer linear probe, (c) language-specific model,
(d) multi-domain without gates, (e) + multi-gating, (f) + NAS, (g) + supervised contrastive loss.
Writes confusion matrices of (g) and the mean gate weights of (g) as PNGs under docs/img/, and
keeps (g)'s per-round probabilities for ``train.distill`` (artifacts/teacher-rounds.npz).
``--teacher-only`` searches and trains (g) alone (with (f)'s search on the same seed, so the same
genotypes) and keeps its rounds, without rewriting the report.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, heads
from .features import CACHE, PREPROCESS, clip_audio
from .fit import gate_means, padded, predict, train
from .metrics import confusion, ua, wa
from .model import SERModel, load_dataset
from .nas import search

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
K = 4
TEACHER_ROUNDS = ROOT / "artifacts" / "teacher-rounds.npz"  # (g) per round, for train.distill
SUPCON = {"weight": 0.1, "tau": 0.1}


def folds(ds) -> list[np.ndarray]:
    """Test indices of each round; every language contributes its fold r."""
    rounds = [[] for _ in range(K)]
    for li in range(len(ds.langs)):
        idx = ds.of(li)
        for r, test_speakers in enumerate(
            data.speaker_folds(list(ds.speakers[idx]), max_loso=K, n_groups=K)
        ):
            rounds[r] += list(idx[np.isin(ds.speakers[idx], test_speakers)])
    return [np.array(sorted(r)) for r in rounds]


def score(ds, test, pred, out: dict) -> None:
    """Accumulate per-language fold UA/WA and the pooled confusion matrix."""
    lang, y = ds.lang.numpy()[test], ds.y.numpy()[test]
    for li, name in enumerate(ds.langs):
        sel = lang == li
        n = len(ds.labels[li])
        o = out.setdefault(name, {"ua": [], "wa": [], "cm": np.zeros((n, n), int)})
        o["ua"].append(ua(y[sel], pred[sel], n))
        o["wa"].append(wa(y[sel], pred[sel]))
        o["cm"] += confusion(y[sel], pred[sel], n)


def teacher_rounds() -> tuple[np.ndarray, list[dict]]:
    """What ``python -m train.report`` kept of (g): every clip's probabilities ``(K, N, max
    classes)`` from each round's model, and each round's genotypes."""
    if not TEACHER_ROUNDS.exists():
        raise SystemExit(f"{TEACHER_ROUNDS} missing: run python -m train.report first")
    f = np.load(TEACHER_ROUNDS)
    return f["probs"], json.loads(str(f["genotypes"]))


def egemaps(corpus: str) -> np.ndarray:
    import opensmile

    path = CACHE / "features" / f"egemaps-{opensmile.__version__}-{PREPROCESS}" / f"{corpus}.npy"
    if not path.exists():
        smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        feats = np.stack(
            [
                smile.process_signal(clip_audio(c.path), 16000).to_numpy()[0]
                for c in data.clips(corpus)
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, feats)
    return np.load(path)


def sklearn_rows(ds, rounds, make_x, make_clf) -> dict:
    out = {}
    for test in rounds:
        pred = np.zeros(len(test), int)
        lang_t = ds.lang.numpy()[test]
        for li in range(len(ds.langs)):
            idx = ds.of(li)
            tr = np.setdiff1d(idx, test)
            te = test[lang_t == li]
            x = make_x(li)
            offset = idx[0]
            clf = make_clf().fit(x[tr - offset], ds.y.numpy()[tr])
            pred[lang_t == li] = clf.predict(x[te - offset])
        score(ds, test, pred, out)
    return out


def probe_rows(ds, rounds) -> tuple[dict, dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best, chosen = {}, {}
    feats = {li: heads.pooled("whisper-base.fp32", corpus) for li, corpus in enumerate(ds.corpora)}
    for layer in range(feats[0].shape[1]):
        res = sklearn_rows(
            ds,
            rounds,
            lambda li: feats[li][:, layer],
            lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
        )
        for lang, r in res.items():
            if lang not in best or np.mean(r["ua"]) > np.mean(best[lang]["ua"]):
                best[lang], chosen[lang] = r, layer
    return best, chosen


def model_rows(
    ds, rounds, gate, epochs, seed, genotypes=None, supcon=0.0, per_language=False, log=print
):
    """``genotypes``: None (default towers), "search" (DARTS per round) or a list per round.
    ``extras``: per round the genotypes, the test clips' mean gate weights and every clip's
    probabilities."""
    out, extras = {}, {"genotypes": [], "gates": [], "probs": []}
    for r, test in enumerate(rounds):
        tr = np.setdiff1d(np.arange(len(ds)), test)
        sds = ds.standardized(tr)
        searched = None
        if genotypes == "search":
            searched = search(sds, tr, epochs=10, seed=seed)
        elif genotypes is not None:
            searched = genotypes[r]
        extras["genotypes"].append(searched)
        pred = np.zeros(len(test), int)
        groups = (
            [[li] for li in range(len(ds.langs))] if per_language else [list(range(len(ds.langs)))]
        )
        for group in groups:
            tr_g = tr[np.isin(ds.lang.numpy()[tr], group)]
            te_mask = np.isin(ds.lang.numpy()[test], group)
            model = train(
                SERModel(sds, gate=gate, genotypes=searched),
                sds,
                tr_g,
                epochs=epochs,
                supcon_weight=supcon,
                seed=seed,
            )
            pred[te_mask] = [int(np.argmax(p)) for p in predict(model, sds, test[te_mask])]
            if not per_language:
                extras["gates"].append(gate_means(model, sds, test))
                extras["probs"].append(padded(predict(model, sds, np.arange(len(ds)))))
        score(ds, test, pred, out)
        log(f"  round {r}: " + ", ".join(f"{k} UA {v['ua'][-1]:.3f}" for k, v in out.items()))
    return out, extras


def plot_confusions(ds, res, path_fmt: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for li, lang in enumerate(ds.langs):
        cm = res[lang]["cm"]
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(5.2, 4.6))
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        labels = ds.labels[li]
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j,
                    i,
                    cm[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{lang} ({ds.corpora[li]}): UA {np.mean(res[lang]['ua']):.2f}")
        fig.tight_layout()
        path = Path(path_fmt.format(lang=lang))
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path.name)
    return files


def plot_gates(ds, gates: list[dict], layers: dict[str, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = np.stack([np.mean([g[lang] for g in gates], axis=0) for lang in ds.langs])
    names = [
        f"{v.split('.')[0].replace('whisper-', '')} L{i}"
        for v, n in layers.items()
        for i in range(n)
    ]
    fig, ax = plt.subplots(figsize=(9, 2.8))
    im = ax.imshow(mean, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(ds.langs)), ds.langs)
    fig.colorbar(im, ax=ax, label="mean gate weight")
    ax.set_title(
        "multi-gating: mean gate weight per language over encoder × layer experts (test clips)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def keep_teacher(teacher: dict) -> None:
    """(g)'s searched genotypes -> docs/genotypes.json, its rounds ->
    artifacts/teacher-rounds.npz."""
    (DOCS / "genotypes.json").write_text(
        json.dumps({"per_round": teacher["genotypes"]}, indent=1, allow_nan=False) + "\n"
    )
    TEACHER_ROUNDS.parent.mkdir(exist_ok=True)
    np.savez(
        TEACHER_ROUNDS,
        probs=torch.stack(teacher["probs"]).numpy(),
        genotypes=json.dumps(teacher["genotypes"]),
    )


def fmt(r) -> str:
    ua, wa = r["ua"], r["wa"]
    return f"{np.mean(ua):.3f} ± {np.std(ua):.3f} | {np.mean(wa):.3f} ± {np.std(wa):.3f}"


def main() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from train.markdown import machine, write_section

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=data.SEED)
    ap.add_argument(
        "--teacher-only", action="store_true", help="train (g) and keep its rounds, nothing else"
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    ds = load_dataset(data.corpora())
    rounds = folds(ds)
    if args.teacher_only:
        _, teacher = model_rows(
            ds,
            rounds,
            gate="input",
            genotypes="search",
            supcon=SUPCON["weight"],
            epochs=args.epochs,
            seed=args.seed,
        )
        keep_teacher(teacher)
        print(f"done in {time.time() - t0:.0f} s")
        return
    rows = {}
    print("(a) eGeMAPS + SVM")
    feats = {li: egemaps(c) for li, c in enumerate(ds.corpora)}
    rows["(a) openSMILE eGeMAPS + SVM (RBF)"] = sklearn_rows(
        ds,
        rounds,
        lambda li: feats[li],
        lambda: make_pipeline(StandardScaler(), SVC(C=1.0, class_weight="balanced")),
    )
    print("(b) linear probes")
    rows["(b) best single-layer linear probe (whisper-base fp32)"], probe_layer = probe_rows(
        ds, rounds
    )
    runs = [
        ("(c) language-specific model", dict(gate="static", per_language=True)),
        ("(d) multi-domain, no gates", dict(gate="shared")),
        ("(e) + multi-gating", dict(gate="input")),
        ("(f) + NAS towers", dict(gate="input", genotypes="search")),
        ("(g) + supervised contrastive loss", dict(gate="input", supcon=SUPCON["weight"])),
    ]
    extras = {}
    for name, kw in runs:
        print(name)
        if name.startswith("(g)"):  # (f)'s searched towers, + SupCon
            kw["genotypes"] = extras[runs[-2][0]]["genotypes"]
        rows[name], extras[name] = model_rows(ds, rounds, epochs=args.epochs, seed=args.seed, **kw)
    full = rows[runs[-1][0]]
    img = DOCS / "img"
    plot_confusions(ds, full, str(img / "confusion-{lang}.png"))
    layers = {v: x.shape[1] for v, x in ds.seq.items()}
    plot_gates(ds, extras[runs[-1][0]]["gates"], layers, img / "gates.png")
    keep_teacher(extras[runs[-1][0]])

    best_model = max(
        rows, key=lambda k: np.mean([np.mean(rows[k][lang]["ua"]) for lang in ds.langs])
    )
    lines = [
        "## The paper's model (`python -m train.report`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}, {args.epochs} epochs, run time "
        f"{time.time() - t0:.0f} s. Features (`python -m train.features`): every layer's "
        "hidden-state sequence of whisper-base and whisper-tiny.en (fp32 ONNX) on the VAD speech "
        "span, averaged to 80 ms steps and centre-cropped to 3.2 s, and the GE2E embedding; (a) "
        "and (b) use whole-span features (eGeMAPS functionals; per-layer time mean + std). "
        "(c)–(g): per encoder a gated layer mixture projected per step, fused, then a tower over "
        "time per language (default: a residual MLP and attentive statistics pooling; (f), (g): "
        "the DARTS-searched ops over time and pooling, searched once per round on the training "
        "speakers and "
        "retrained from scratch; (g) adds SupCon, weight 0.1, τ 0.1, to (f)'s genotypes).",
        "",
        "Folds: speaker-independent, 4 per language (EMOVO leave-one-speaker-out; EmoDB, RAVDESS, "
        "URDU 4 speaker groups, seed 12345); one multi-domain model per round is tested on every "
        "language's held-out speakers. Mean ± std over the 4 folds. (b) picks the best layer per "
        "language on the test "
        f"folds, so it is an optimistic reference (layers: {probe_layer}).",
        "",
    ]
    for li, lang in enumerate(ds.langs):
        lines += [
            f"### {lang} ({ds.corpora[li]}, {len(ds.labels[li])} classes, chance UA "
            f"{1 / len(ds.labels[li]):.3f})",
            "",
            "| model | UA | WA |",
            "|---|---|---|",
        ]
        lines += [f"| {name} | {fmt(r[lang])} |" for name, r in rows.items()]
        lines += ["", f"![confusion {lang}](img/confusion-{lang}.png)", ""]
    lines += [
        "### Summary",
        "",
        "| model | " + " | ".join(f"UA {lang}" for lang in ds.langs) + " | mean |",
        "|---|" + "---|" * (len(ds.langs) + 1),
    ]
    for name, r in rows.items():
        means = [np.mean(r[lang]["ua"]) for lang in ds.langs]
        lines.append(
            f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |"
        )
    lines += [
        "",
        f"Best mean UA: **{best_model}**.",
        "",
        "Gate weights of (g), mean over each language's test clips:",
        "",
        "![gates](img/gates.png)",
        "",
        "Searched genotypes per round (tower ops over time, then the pooling; (f), reused by (g)): "
        "`docs/genotypes.json`.",
    ]
    write_section(DOCS / "results.md", "model", "\n".join(lines), title="# Results\n")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
