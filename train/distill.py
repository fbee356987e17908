"""Distillation: the multi-domain teacher (fp32 whisper-base + tiny.en + GE2E, one pass over each
clip) -> students on what the edge runtime computes cheaply, measured on the report's
speaker-independent folds. The teacher of each round is the report's (g), kept by
``python -m train.report``. Students: the same multi-domain gated model with the round's searched
towers, on int8 whisper-base + GE2E only, and a linear head per language on whisper-base. What ships
is their ensemble: the mean of the multi-domain student's and the linear head's probabilities.
``STUDENTS``, on the same folds and seeds: ``chunks`` (the runtime's streaming chunk features,
whisper-base cut after layer 4, clean clips), ``augmented`` (the same features, also trained on a
phone-call and a noisy-room view of each clip, ``train.augment``), ``augmented+line`` (what ships:
those and a third view, the phone call without the analogue band) and ``one-pass`` (the previous
runtime: each clip's speech encoded whole by the full int8 whisper-base). The chunk students are
also measured on the test speakers through a phone line and in noise (``TESTS``).

    python -m train.report             # first: the teachers -> artifacts/teacher-rounds.npz
    python -m train.distill            # -> docs/results.md (section "distill"),
    artifacts/distill.json
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from . import augment, data, heads
from .features import CLEAN, is_voice
from .fit import padded, predict, train
from .markdown import write_json
from .metrics import ua, wa
from .model import SERModel, load_dataset, stack
from .nas import search
from .report import SUPCON, folds, teacher_rounds

ROOT = Path(__file__).resolve().parents[1]
TEACHER = {"gate": "input", "nas": True, "supcon": SUPCON["weight"]}  # the report's full model (g)
PATHS = {  # feature path -> {cache variant: bundle input name}
    "chunks": {"whisper-base-l4.int8@chunks": "whisper-base", "ge2e.int8@chunks": "ge2e"},
    "one-pass": {"whisper-base.int8": "whisper-base", "ge2e.int8": "ge2e"},
}
TRAIN_VIEWS = tuple(augment.VIEWS)  # degraded views the shipped students also learn from
TESTS = (CLEAN, *augment.TESTS)  # conditions the chunk students are measured under
STUDENTS = {  # name -> (feature path, training views besides the clean clips)
    "chunks": ("chunks", ()),
    "augmented": ("chunks", ("phone", "noisy")),
    "augmented+line": ("chunks", TRAIN_VIEWS),
    "one-pass": ("one-pass", ()),
}
SHIPPED = "augmented+line"
STUDENT = PATHS[STUDENTS[SHIPPED][0]]


def whisper_variants(path: str) -> list[str]:
    return [v for v in PATHS[path] if not is_voice(v)]


def teacher_probs(
    ds, train_idx, seed: int, genotypes=None, epochs: int = 30
) -> tuple[torch.Tensor, dict]:
    """Train the teacher on ``train_idx`` (searching its towers unless ``genotypes`` are given);
    its probabilities for every clip ``(N, max classes)`` and the genotypes."""
    ds = ds.standardized(train_idx)
    if genotypes is None and TEACHER["nas"]:
        genotypes = search(ds, train_idx, epochs=10, seed=seed)
    model = train(
        SERModel(ds, gate=TEACHER["gate"], genotypes=genotypes),
        ds,
        train_idx,
        epochs=epochs,
        supcon_weight=TEACHER["supcon"],
        seed=seed,
    )
    return padded(predict(model, ds, np.arange(len(ds)))), genotypes


def student_dataset(path: str = STUDENTS[SHIPPED][0], view: str = CLEAN, corpora=None):
    """A feature path's inputs for every clip of ``corpora`` (default: all) (``view``: of that
    degraded view; None: clean)."""
    ge2e = next(v for v in PATHS[path] if is_voice(v))
    return load_dataset(corpora or data.corpora(), whisper_variants(path), ge2e, view)


def training_set(name: str, views: dict):
    """A student's training rows: the clean clips, then each of its training views (``views``: the
    loaded view datasets of its path). Clip ``i`` of view ``k`` is row ``k * N + i``."""
    path, extra = STUDENTS[name]
    return stack([views[path, v] for v in (CLEAN, *extra)])


def view_rows(rows: np.ndarray, n: int, name: str) -> np.ndarray:
    """Clips ``rows`` of ``n`` in each view of a student's training set (see ``training_set``)."""
    return np.concatenate([rows + j * n for j in range(1 + len(STUDENTS[name][1]))])


def fit_multi_domain(
    name: str, views: dict, train_idx, genotypes, teacher: torch.Tensor, seed: int
):
    """Student ``name``'s multi-domain model on clips ``train_idx`` and their training views, and
    the standardisation its inputs had (for other views of the same clips)."""
    rows = view_rows(train_idx, len(teacher), name)
    sds = training_set(name, views).standardized(rows)
    copies = 1 + len(STUDENTS[name][1])
    return fit_student(sds, rows, genotypes, teacher.repeat(copies, 1), seed), sds.norm


def fit_linear(name: str, corpus: str, y: np.ndarray, teacher: np.ndarray, train_idx, seed: int):
    """Student ``name``'s linear head for ``corpus`` on its clips ``train_idx`` (labels ``y`` and
    teacher probabilities of all its clips) and their training views."""
    path, extra = STUDENTS[name]
    feats = pooled_views(path, corpus, (CLEAN, *extra))
    rows = view_rows(train_idx, len(y), name)
    copies = 1 + len(extra)
    return heads.fit(
        {v: x[rows] for v, x in feats.items()},
        np.tile(y, copies)[rows],
        teacher.shape[1],
        seed=seed,
        teacher=np.tile(teacher, (copies, 1))[rows],
    )


def pooled_views(path: str, corpus: str, views) -> dict[str, np.ndarray]:
    """The linear head's inputs for a corpus, the views one after the other as in
    ``training_set``."""
    return {
        v: np.concatenate([heads.pooled(v, corpus, view) for view in views])
        for v in whisper_variants(path)
    }


def student_inputs(corpus: str, view: str = CLEAN) -> dict[str, np.ndarray]:
    """The shipped encoders' pooled features of a corpus's clips (of a degraded ``view``), by bundle
    input name: what numpy heads (``any``, enrolled languages, the shared trunk) read."""
    return {name: heads.pooled(v, corpus, view) for v, name in STUDENT.items()}


def fit_student(
    ds, train_idx, genotypes, teacher: torch.Tensor, seed: int, epochs: int = 40
) -> SERModel:
    """The teacher's architecture (input gates, searched towers, SupCon) on the student's inputs,
    trained on the teacher's probabilities ``(N, max classes)`` (T = 4, 0.9 KL + 0.1 CE).
    ``ds``: standardised."""
    model = SERModel(ds, gate=TEACHER["gate"], genotypes=genotypes)
    return train(
        model,
        ds,
        train_idx,
        epochs=epochs,
        supcon_weight=TEACHER["supcon"],
        seed=seed,
        teacher=teacher,
    )


def views_of(name: str) -> tuple[str, ...]:
    """Where a student is measured: every test condition on the chunk path, clean otherwise."""
    return TESTS if STUDENTS[name][0] == "chunks" else (CLEAN,)


def evaluate(seed: int = data.SEED, repeats: int = 1, log=print) -> dict:
    """Per language, fold and repeat: teacher UA/WA, and each student (KD) under each of its test
    conditions. Students learn from the teacher's probabilities of the clean clips, on every view
    they train on. Repeat 0 uses the report's teachers; repeat k retrains each round's teacher (same
    genotypes) and the students with seed + k."""
    teachers, genotypes = teacher_rounds()
    needed = {
        (p, v) for name, (p, extra) in STUDENTS.items() for v in {CLEAN, *extra, *views_of(name)}
    }
    views = {key: student_dataset(*key) for key in sorted(needed)}
    tds = load_dataset(data.corpora()) if repeats > 1 else None
    ds = views[STUDENTS[SHIPPED][0], CLEAN]
    N = len(ds)
    rounds = folds(ds)
    res = {lang: {} for lang in ds.langs}
    for (r, test), k in itertools.product(enumerate(rounds), range(repeats)):
        tr = np.setdiff1d(np.arange(N), test)
        probs = (
            torch.from_numpy(teachers[r])
            if k == 0
            else teacher_probs(tds, tr, seed + k, genotypes[r])[0]
        )
        t_all = probs.numpy()
        md = {}  # (student, test condition) -> (N, max classes) probabilities, test rows filled
        for name, (path, _) in STUDENTS.items():
            model, norm = fit_multi_domain(name, views, tr, genotypes[r], probs, seed + k)
            for cond in views_of(name):
                md[name, cond] = np.zeros(t_all.shape)
                md[name, cond][test] = padded(
                    predict(model, views[path, cond].standardized(norm=norm), test)
                ).numpy()
        for li, (lang, corpus) in enumerate(zip(ds.langs, ds.corpora)):
            idx = ds.of(li)
            off, n = idx[0], len(ds.labels[li])
            tr_l, te_l = np.intersect1d(tr, idx) - off, np.intersect1d(test, idx) - off
            y = ds.y.numpy()[idx]
            t = t_all[idx, :n]
            scores = {"teacher": t[te_l]}
            for name, (path, _) in STUDENTS.items():
                model = fit_linear(name, corpus, y, t, tr_l, seed + k)
                for cond in views_of(name):
                    at = "" if cond == CLEAN else f" @ {cond}"
                    test_feats = {
                        v: x[te_l] for v, x in pooled_views(path, corpus, (cond,)).items()
                    }
                    scores[f"multi-domain {name}{at}"] = md[name, cond][idx][te_l, :n]
                    scores[f"linear {name}{at}"] = heads.predict(model, test_feats)
                    scores[f"ensemble {name}{at}"] = (
                        scores[f"multi-domain {name}{at}"] + scores[f"linear {name}{at}"]
                    ) / 2
            for key, p in scores.items():
                o = res[lang].setdefault(key, {"ua": [], "wa": []})
                o["ua"].append(ua(y[te_l], p.argmax(1), n))
                o["wa"].append(wa(y[te_l], p.argmax(1)))
        log(
            f"round {r}, repeat {k}: "
            + ", ".join(
                f"{lang} teacher {v['teacher']['ua'][-1]:.3f} "
                + " ".join(f"{s} {v[f'ensemble {s}']['ua'][-1]:.3f}" for s in STUDENTS)
                for lang, v in res.items()
            )
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    ap.add_argument("--repeats", type=int, default=1, help="seeds per fold (teacher and students)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    res = evaluate(args.seed, args.repeats)
    write_json("distill", res)
    write_report(res, args.seed, args.repeats, time.time() - t0)


CONDITION_NAMES = {
    CLEAN: "clean",
    "mulaw": "8 kHz μ-law",
    "tel": "telephone band + 8 kHz μ-law",
    "snr10": "white noise 10 dB SNR",
    "snr0": "white noise 0 dB SNR",
}


def write_report(res: dict, seed: int, repeats: int, seconds: float) -> None:
    from train.markdown import machine, write_section

    mean = lambda r, key: np.mean(r[key]["ua"])
    kinds = ("multi-domain", "linear", "ensemble")
    cols = ["teacher", *(f"{kind} {name}" for name in STUDENTS for kind in kinds)]
    lines = [
        "## Distillation: teacher vs edge students (`python -m train.distill`)",
        "",
        f"Machine: {machine()}. Seeds {seed}..{seed + repeats - 1}, run time {seconds:.0f} s. Same "
        f"4 speaker-independent folds as above, each repeated with {repeats} seeds. Teacher: the "
        "full multi-domain model (g) on fp32 whisper-base + tiny.en + GE2E (one pass over each "
        "clip's speech), trained on each round's training speakers (seed 0: the report's (g); "
        "further seeds retrain it with the round's genotypes). Students, trained with KD on the "
        "teacher's probabilities of the clean clips (multi-domain: T = 4, 0.9 KL + 0.1 CE, 40 "
        "epochs; linear: T = 2, 0.7 KL + 0.3 CE): the multi-domain student (the teacher's "
        "architecture and searched towers on int8 whisper-base + GE2E only), a linear head per "
        "language (learned layer weights over time mean + std of whisper-base), and their "
        "ensemble (the mean of the two heads' probabilities). Students: **chunks** (the runtime's "
        "streaming features, `rtser.pipeline.features`: 2 s chunks with 1 s of left context (none "
        "for the first), whisper-base cut after layer 4 (fp32 convolutions), one GE2E embedding "
        "per segment; clean clips), **augmented** (the same features, trained on each clean clip "
        "and two degraded views of it, `train.augment`: a phone call — telephone band, G.711 "
        "μ-/A-law at 8 kHz, lost packets, half the time noise at 10–30 dB — and a noisy room — "
        "speed ±5 %, reverberation, white/pink/brown/hum/babble noise at 0–30 dB, any gain; "
        "babble from the other corpora), **augmented+line** (the same, plus a third view: the "
        "phone call without the analogue 300–3400 Hz band, as a digital VoIP or mobile leg "
        "delivers G.711) and **one-pass** (the previous runtime: the whole speech span through "
        "the full int8 whisper-base and GE2E). What ships: the "
        f"ensemble of **{SHIPPED}**. UA on clean test speakers, mean over folds and seeds:",
        "",
        "| lang | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for lang, r in res.items():
        lines.append(f"| {lang} | " + " | ".join(f"{mean(r, c):.3f}" for c in cols) + " |")
    robust = [name for name, (path, _) in STUDENTS.items() if path == "chunks"]
    order = " → ".join(f"**{name}**" for name in robust)
    key = lambda name, cond: f"ensemble {name}" + ("" if cond == CLEAN else f" @ {cond}")
    lines += [
        "",
        "### Robustness: the test speakers through a phone line",
        "",
        "Ensemble UA on the test speakers' clips under each condition (`train.augment.TESTS`, "
        "seeded per "
        "clip; the VAD cuts the degraded audio, as at run time), " + order + ":",
        "",
        "| lang | " + " | ".join(CONDITION_NAMES[c] for c in TESTS) + " |",
        "|---|" + "---|" * len(TESTS),
    ]
    for lang, r in res.items():
        lines.append(
            f"| {lang} | "
            + " | ".join(" → ".join(f"{mean(r, key(s, c)):.3f}" for s in robust) for c in TESTS)
            + " |"
        )
    lines += [
        "",
        f"Loss against clean, in UA points ({order}):",
        "",
        "| lang | " + " | ".join(CONDITION_NAMES[c] for c in TESTS[1:]) + " |",
        "|---|" + "---|" * (len(TESTS) - 1),
    ]
    for lang, r in res.items():
        lines.append(
            f"| {lang} | "
            + " | ".join(
                " → ".join(
                    f"{100 * (mean(r, key(s, c)) - mean(r, key(s, CLEAN))):+.1f}" for s in robust
                )
                for c in TESTS[1:]
            )
            + " |"
        )
    pairs = [
        (f"ensemble {SHIPPED}", "teacher"),
        ("ensemble augmented+line", "ensemble augmented"),
        ("ensemble augmented", "ensemble chunks"),
        ("ensemble chunks", "ensemble one-pass"),
        ("multi-domain augmented", "multi-domain chunks"),
        ("linear augmented", "linear chunks"),
    ]
    lines += [
        "",
        "Differences in clean UA, paired over folds × seeds (mean ± standard error):",
        "",
        "| lang | " + " | ".join(f"{a} − {b}" for a, b in pairs) + " |",
        "|---|" + "---|" * len(pairs),
    ]
    for lang, r in res.items():
        diffs = [np.array(r[a]["ua"]) - np.array(r[b]["ua"]) for a, b in pairs]
        lines.append(
            f"| {lang} | "
            + " | ".join(f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}" for d in diffs)
            + " |"
        )
    write_section(ROOT / "docs" / "results.md", "distill", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
