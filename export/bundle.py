"""Build the shipped bundle from the feature cache: one head per language + int8 encoders +
``manifest.json`` (hashes, labels, front-end parameters, data summary, measured metrics).

    python -m export.bundle [--out rtser/bundle]
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
from rtser.bundle import DEFAULT, FORMAT, sha256
from train import data, heads

BUILD = Path(__file__).resolve().parents[1] / "build" / "encoders"
FEATURES = {"whisper-base.int8": "whisper-base", "ge2e.int8": "ge2e"}  # cache variant -> bundle name


def summary(items: list[data.Clip]) -> dict:
    return {"corpus": items[0].corpus, "clips": len(items), "speakers": len({c.speaker for c in items}),
            "label_counts": dict(sorted(Counter(c.label for c in items).items()))}


def build(out: Path = DEFAULT, corpora=None, seed: int = data.SEED) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    languages = {}
    for corpus in corpora or data.corpora():
        items = data.clips(corpus)
        lang, labels = items[0].language, data.labels(items)
        y = np.array([labels.index(c.label) for c in items])
        feats = {v: heads.pooled(v, corpus) for v in FEATURES}
        cv = heads.cross_validate(feats, y, [c.speaker for c in items], len(labels), seed=seed)
        model = heads.fit(feats, y, len(labels), seed=seed)
        widths = {v: ((x.shape[1], x.shape[2] // 2) if x.ndim == 3 else (0, x.shape[1])) for v, x in feats.items()}
        head_file = f"head-{lang}.onnx"
        heads.export_head(model, widths, FEATURES, out / head_file)
        languages[lang] = {
            "labels": labels, "head": head_file, "training": summary(items),
            "metrics": {"protocol": "speaker-independent CV (leave-one-speaker-out up to 10 speakers, "
                                    "else 5 speaker groups), int8 encoders",
                        "ua_mean": round(float(np.mean(cv["ua"])), 4), "ua_std": round(float(np.std(cv["ua"])), 4),
                        "wa_mean": round(float(np.mean(cv["wa"])), 4), "wa_std": round(float(np.std(cv["wa"])), 4),
                        "folds": len(cv["ua"])},
            "layer_weights": {v: model.pool[model._key(v)].weights.detach().numpy().round(4).tolist()
                              for v in FEATURES if model.pool[model._key(v)].weights is not None},
        }
        print(f"{lang} ({corpus}): UA {np.mean(cv['ua']):.3f} ± {np.std(cv['ua']):.3f}, "
              f"WA {np.mean(cv['wa']):.3f}")
    encoders = {}
    for variant, name in FEATURES.items():
        src, dst = BUILD / f"{variant}.onnx", out / f"{variant}.onnx"
        if not dst.exists() or sha256(dst) != sha256(src):  # re-commit encoders only when they change
            shutil.copyfile(src, dst)
        encoders[name] = {"file": dst.name, "sha256": sha256(dst)}
    files = sorted([lang["head"] for lang in languages.values()] + [e["file"] for e in encoders.values()])
    manifest = {
        "format": FORMAT, "name": "rtser-default", "rtser_version": __version__,
        "created": time.strftime("%Y-%m-%d"),
        "frontend": {"sample_rate": frontend.SAMPLE_RATE, "n_fft": frontend.N_FFT, "hop": frontend.HOP,
                     "whisper_mels": 80, "ge2e_mels": 40},
        "window_s": 3.0, "hop_s": 0.5,
        "encoders": encoders, "languages": languages,
        "files": {f: sha256(out / f) for f in files},
        "built_with": {"seed": seed, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                       "seconds": round(time.time() - t0)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for stale in set(p.name for p in out.glob("*.onnx")) - set(files):
        (out / stale).unlink()
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT)
    ap.add_argument("--corpora", nargs="*")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    build(args.out, args.corpora)


if __name__ == "__main__":
    main()
