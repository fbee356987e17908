"""Build the shipped bundle: the multi-domain teacher trained on every speaker, distilled into one
small head per language on int8 encoders, + the int8 encoder graphs + ``manifest.json`` (hashes,
labels, front-end parameters, training data summary, measured metrics).

    python -m train.distill            # first: speaker-independent metrics -> build/distill.json
    python -m export.bundle [--student base+ge2e] [--out rtser/bundle]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from rtser import __version__, frontend
from rtser.bundle import DEFAULT, FORMAT, Bundle, sha256
from train import data, heads
from train.distill import STUDENTS, teacher_probs
from train.model import load_dataset

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"


def summary(items: list[data.Clip]) -> dict:
    return {"corpus": items[0].corpus, "clips": len(items), "speakers": len({c.speaker for c in items}),
            "label_counts": dict(sorted(Counter(c.label for c in items).items()))}


def ms_per_clip(bundle: Path, lang: str, seconds: float = 3.0, reps: int = 20) -> float:
    from rtser.model import Classifier
    clf = Classifier(Bundle(bundle), lang, threads=1)
    x = np.random.default_rng(0).standard_normal(int(seconds * frontend.SAMPLE_RATE)).astype("float32") * 0.1
    clf.probs(x)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        clf.probs(x)
        times.append(time.perf_counter() - t)
    return round(1000 * float(np.median(times)), 1)


def build(out: Path = DEFAULT, student: str = "base+ge2e", seed: int = data.SEED) -> dict:
    cv_path = BUILD / "distill.json"
    if not cv_path.exists():
        raise SystemExit(f"{cv_path} missing: run python -m train.distill first")
    cv = json.loads(cv_path.read_text())
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    variants = STUDENTS[student]
    ds = load_dataset(data.corpora())
    probs, genotypes = teacher_probs(ds, np.arange(len(ds)), seed)  # teacher on every speaker
    languages = {}
    for li, corpus in enumerate(ds.corpora):
        items = data.clips(corpus)
        lang, labels = ds.langs[li], ds.labels[li]
        idx = ds.of(li)
        y = ds.y.numpy()[idx]
        feats = {v: heads.pooled(v, corpus) for v in variants}
        model = heads.fit(feats, y, len(labels), seed=seed, teacher=np.stack([probs[i] for i in idx]))
        widths = {v: ((x.shape[1], x.shape[2] // 2) if x.ndim == 3 else (0, x.shape[1])) for v, x in feats.items()}
        head_file = f"head-{lang}.onnx"
        heads.export_head(model, widths, variants, out / head_file)
        r = cv[lang]
        mean = lambda k, m="ua": round(float(np.mean(r[k][m])), 4)  # noqa: E731
        languages[lang] = {
            "labels": labels, "head": head_file, "training": summary(items),
            "metrics": {"protocol": "speaker-independent, 4 folds (python -m train.distill)",
                        "ua_mean": mean(f"{student} int8"), "ua_std": round(float(np.std(r[f"{student} int8"]["ua"])), 4),
                        "wa_mean": mean(f"{student} int8", "wa"), "teacher_ua": mean("teacher"),
                        "student_fp32_ua": mean(f"{student} fp32")},
            "teacher_genotype": genotypes[lang],
            "layer_weights": {v: model.pool[model._key(v)].weights.detach().numpy().round(4).tolist()
                              for v in variants if model.pool[model._key(v)].weights is not None},
        }
    encoders = {}
    for variant, name in variants.items():
        src, dst = BUILD / "encoders" / f"{variant}.onnx", out / f"{variant}.onnx"
        if not dst.exists() or sha256(dst) != sha256(src):  # re-commit encoders only when they change
            shutil.copyfile(src, dst)
        encoders[name] = {"file": dst.name, "sha256": sha256(dst)}
    files = sorted([spec["head"] for spec in languages.values()] + [e["file"] for e in encoders.values()])
    for stale in {p.name for p in out.glob("*.onnx")} - set(files):
        (out / stale).unlink()
    manifest = {
        "format": FORMAT, "name": "rtser-default", "rtser_version": __version__, "created": time.strftime("%Y-%m-%d"),
        "frontend": {"sample_rate": frontend.SAMPLE_RATE, "n_fft": frontend.N_FFT, "hop": frontend.HOP,
                     "whisper_mels": 80, "ge2e_mels": 40},
        "window_s": 3.0, "hop_s": 0.5, "student": student,
        "encoders": encoders, "languages": languages,
        "files": {f: sha256(out / f) for f in files},
        "built_with": {"seed": seed, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                       "seconds": round(time.time() - t0)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for lang, spec in languages.items():  # speed of the written bundle, then the final manifest
        spec["metrics"]["ms_per_3s_clip_1_thread"] = ms_per_clip(out, lang)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_report(manifest: dict, out: Path) -> None:
    from bench.report import machine, write_section
    size = sum((out / f).stat().st_size for f in manifest["files"])
    lines = ["## Shipped bundle (`python -m export.bundle`)", "",
             f"Student `{manifest['student']}` on int8 encoders, distilled from the teacher trained on every speaker. "
             f"Bundle size {size / 1e6:.1f} MB. UA from `python -m train.distill` (4 speaker-independent folds); "
             f"ms per 3 s clip: encoders + head, 1 thread, median of 20, on {machine()}.", "",
             "| lang | teacher fp32 UA | student fp32 UA | student int8 UA (shipped) | student − teacher | ms / 3 s clip |",
             "|---|---|---|---|---|---|"]
    for lang, spec in manifest["languages"].items():
        m = spec["metrics"]
        lines.append(f"| {lang} | {m['teacher_ua']:.3f} | {m['student_fp32_ua']:.3f} | {m['ua_mean']:.3f} | "
                     f"{m['ua_mean'] - m['teacher_ua']:+.3f} | {m['ms_per_3s_clip_1_thread']} |")
    write_section(ROOT / "docs" / "results.md", "bundle", "\n".join(lines), title="# Results\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT)
    ap.add_argument("--student", choices=list(STUDENTS), default="base+ge2e")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    torch.set_num_threads(2)
    write_report(build(args.out, args.student), args.out)


if __name__ == "__main__":
    main()
