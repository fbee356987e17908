"""Distillation: the multi-domain teacher (fp32 whisper-base + tiny.en + GE2E, one pass over each
clip) -> students on what the edge runtime computes cheaply, measured on the report's
speaker-independent folds. The teacher of each round is the report's (g), kept by
``python -m train.report``. Students: the same multi-domain gated model with the round's searched
towers, on int8 whisper-base + GE2E only, and a linear head per language on whisper-base. What ships
is their ensemble: the mean of the multi-domain student's and the linear head's probabilities.
Students are trained on two feature paths, on the same folds and seeds: ``chunks`` (what ships:
the runtime's streaming chunk features, whisper-base cut after layer 4) and ``one-pass`` (the
previous runtime: each clip's speech encoded whole by the full int8 whisper-base).

    python -m train.report             # first: the teachers -> build/teacher-rounds.npz
    python -m train.distill            # -> docs/results.md (section "distill"), build/distill.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, heads
from .fit import padded, predict, train
from .metrics import ua, wa
from .model import SERModel, load_dataset
from .nas import search
from .report import SUPCON, folds, teacher_rounds

ROOT = Path(__file__).resolve().parents[1]
TEACHER = {"gate": "input", "nas": True, "supcon": SUPCON["weight"]}  # the report's full model (g)
PATHS = {  # student feature path -> {cache variant: bundle input name}; the first one ships
    "chunks": {"whisper-base-l4.int8@chunks": "whisper-base", "ge2e.int8@chunks": "ge2e"},
    "one-pass": {"whisper-base.int8": "whisper-base", "ge2e.int8": "ge2e"},
}
SHIPPED = "chunks"
STUDENT = PATHS[SHIPPED]


def whisper_variants(path: str) -> list[str]:
    return [v for v in PATHS[path] if not v.startswith("ge2e")]


def teacher_probs(ds, train_idx, seed: int, genotypes=None, epochs: int = 30) -> tuple[torch.Tensor, dict]:
    """Train the teacher on ``train_idx`` (searching its towers unless ``genotypes`` are given);
    its probabilities for every clip ``(N, max classes)`` and the genotypes."""
    ds = ds.standardized(train_idx)
    if genotypes is None and TEACHER["nas"]:
        genotypes = search(ds, train_idx, epochs=10, seed=seed)
    model = train(SERModel(ds, gate=TEACHER["gate"], genotypes=genotypes), ds, train_idx,
                  epochs=epochs, supcon_weight=TEACHER["supcon"], seed=seed)
    return padded(predict(model, ds, np.arange(len(ds)))), genotypes


def student_dataset(path: str = SHIPPED):
    ge2e = next(v for v in PATHS[path] if v.startswith("ge2e"))
    return load_dataset(data.corpora(), whisper_variants(path), ge2e)


def fit_student(ds, train_idx, genotypes, teacher: torch.Tensor, seed: int, epochs: int = 40) -> SERModel:
    """The teacher's architecture (input gates, searched towers, SupCon) on the student's inputs,
    trained on the teacher's probabilities ``(N, max classes)`` (T = 4, 0.9 KL + 0.1 CE).
    ``ds``: standardised."""
    model = SERModel(ds, gate=TEACHER["gate"], genotypes=genotypes)
    return train(model, ds, train_idx, epochs=epochs, supcon_weight=TEACHER["supcon"], seed=seed,
                 teacher=teacher)


def evaluate(seed: int = data.SEED, repeats: int = 1, log=print) -> dict:
    """Per language, fold and repeat: teacher UA/WA, and each student (KD) on each feature path.
    Repeat 0 uses the report's teachers; repeat k retrains each round's teacher (same genotypes) and
    the students with seed + k."""
    teachers, genotypes = teacher_rounds()
    students = {p: student_dataset(p) for p in PATHS}
    tds = load_dataset(data.corpora()) if repeats > 1 else None
    ds = students[SHIPPED]
    rounds = folds(ds)
    linear_inputs = {p: {c: {v: heads.pooled(v, c) for v in whisper_variants(p)} for c in ds.corpora}
                     for p in PATHS}  # loaded once
    res = {lang: {} for lang in ds.langs}
    for (r, test), k in itertools.product(enumerate(rounds), range(repeats)):
        tr = np.setdiff1d(np.arange(len(ds)), test)
        if k == 0:
            probs = torch.from_numpy(teachers[r])
        else:
            probs = teacher_probs(tds, tr, seed + k, genotypes[r])[0]
        t_all = probs.numpy()
        md = {}  # path -> (N, max classes) probabilities of the test clips
        for path, student in students.items():
            sds = student.standardized(tr)
            model = fit_student(sds, tr, genotypes[r], probs, seed + k)
            md[path] = np.zeros(t_all.shape)
            md[path][test] = padded(predict(model, sds, test)).numpy()
        for li, (lang, corpus) in enumerate(zip(ds.langs, ds.corpora)):
            idx = ds.of(li)
            off, n = idx[0], len(ds.labels[li])
            tr_l, te_l = np.intersect1d(tr, idx) - off, np.intersect1d(test, idx) - off
            y = ds.y.numpy()[idx]
            t = t_all[idx, :n]
            scores = {"teacher": t[te_l]}
            for path, p in md.items():
                feats = linear_inputs[path][corpus]
                model = heads.fit({v: x[tr_l] for v, x in feats.items()}, y[tr_l], n, seed=seed + k, teacher=t[tr_l])
                scores[f"multi-domain {path}"] = p[idx][te_l, :n]
                scores[f"linear {path}"] = heads.predict(model, {v: x[te_l] for v, x in feats.items()})
                scores[f"ensemble {path}"] = (scores[f"multi-domain {path}"] + scores[f"linear {path}"]) / 2
            for name, p in scores.items():
                o = res[lang].setdefault(name, {"ua": [], "wa": []})
                o["ua"].append(ua(y[te_l], p.argmax(1), n))
                o["wa"].append(wa(y[te_l], p.argmax(1)))
        log(f"round {r}, repeat {k}: " + ", ".join(
            f"{lang} teacher {v['teacher']['ua'][-1]:.3f} " + " ".join(f"{p} {v[f'ensemble {p}']['ua'][-1]:.3f}" for p in PATHS)
            for lang, v in res.items()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=data.SEED)
    ap.add_argument("--repeats", type=int, default=1, help="seeds per fold (teacher and students)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    res = evaluate(args.seed, args.repeats)
    out = ROOT / "build" / "distill.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1, allow_nan=False))
    write_report(res, args.seed, args.repeats, time.time() - t0)


def write_report(res: dict, seed: int, repeats: int, seconds: float) -> None:
    from train.markdown import machine, write_section

    cols = list(next(iter(res.values())))
    lines = ["## Distillation: teacher vs edge students (`python -m train.distill`)", "",
             f"Machine: {machine()}. Seeds {seed}..{seed + repeats - 1}, run time {seconds:.0f} s. "
             "Same 4 speaker-independent folds as above, each repeated with "
             f"{repeats} seeds. Teacher: the full multi-domain model (g) on fp32 whisper-base + tiny.en + GE2E "
             "(one pass over each clip's speech), trained on each round's training speakers (seed 0: the report's "
             "(g); further seeds retrain it with the round's genotypes). Students, trained with KD on the teacher's "
             "probabilities (multi-domain: T = 4, 0.9 KL + 0.1 CE, 40 epochs; linear: T = 2, 0.7 KL + 0.3 CE): the "
             "multi-domain student (the teacher's architecture and searched towers on int8 whisper-base + GE2E "
             "only), a linear head per language (learned layer weights over time mean + std of whisper-base), and "
             "their ensemble (the mean of the two heads' probabilities), each on two feature paths: **chunks** "
             "(what ships: the runtime's streaming features, `rtser.chunks`: 2 s chunks with 1 s of left "
             "context, whisper-base cut after layer 4, GE2E per chunk) and **one-pass** (the previous runtime: "
             "the whole speech span through the full int8 whisper-base and GE2E). UA mean over folds and seeds.", "",
             "| lang | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for lang, r in res.items():
        lines.append(f"| {lang} | " + " | ".join(f"{np.mean(r[c]['ua']):.3f}" for c in cols) + " |")
    pairs = [("ensemble chunks", "teacher"), ("ensemble one-pass", "teacher"), ("ensemble chunks", "ensemble one-pass"),
             ("multi-domain chunks", "multi-domain one-pass"), ("linear chunks", "linear one-pass")]
    lines += ["", "Differences in UA, paired over folds × seeds (mean ± standard error); what ships is "
              "the ensemble on chunks:", "",
              "| lang | " + " | ".join(f"{a} − {b}" for a, b in pairs) + " |", "|---|" + "---|" * len(pairs)]
    for lang, r in res.items():
        diffs = [np.array(r[a]["ua"]) - np.array(r[b]["ua"]) for a, b in pairs]
        lines.append(f"| {lang} | " + " | ".join(f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}"
                                                 for d in diffs) + " |")
    write_section(ROOT / "docs" / "results.md", "distill", "\n".join(lines), title="# Results\n")


if __name__ == "__main__":
    main()
