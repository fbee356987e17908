"""Build the shipped bundle: the multi-domain teacher trained on every speaker, distilled into the
multi-domain student on int8 whisper-base + GE2E and a linear whisper-base head per language,
exported as one ONNX head per language (the mean of the two students' probabilities), + the int8
encoder graphs + ``manifest.json`` (hashes, labels, front-end parameters, training data summary,
measured metrics).

    python -m train.distill            # first: speaker-independent metrics -> artifacts/
    python -m export.bundle [--out rtser/bundle]
    python -m export.strangers         # then: the numpy heads and calibrations for strangers
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

from rtser import __version__
from rtser.bundle import DEFAULT, FORMAT, Bundle, sha256
from rtser.pipeline import frontend
from rtser.pipeline.features import CHUNK
from train import core, data, heads, shared
from train.distill import (
    SHIPPED,
    STUDENT,
    STUDENTS,
    TESTS,
    fit_linear,
    fit_multi_domain,
    student_dataset,
    teacher_probs,
)
from train.features import CLEAN, is_voice, onnx_of
from train.model import SERModel, downsample, load_dataset

from . import vad
from .manifest import save

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
SHARED = "shared.npz"  # the trunk new languages are enrolled on (train.shared)
PRIOR = "emotions.npz"  # what their classes lean on, by name (train.core.emotions_head)


def summary(items: list[data.Clip]) -> dict:
    return {
        "corpus": items[0].corpus,
        "clips": len(items),
        "speakers": len({c.speaker for c in items}),
        "label_counts": dict(sorted(Counter(c.label for c in items).items())),
    }


def ms_per_clip(bundle: Path, lang: str, seconds: float = 3.0, reps: int = 20) -> float:
    from rtser.pipeline.classifier import Classifier
    from rtser.pipeline.features import clip_features

    clf = Classifier(Bundle(bundle), lang, threads=1)
    x = (
        np.random.default_rng(0)
        .standard_normal(int(seconds * frontend.SAMPLE_RATE))
        .astype("float32")
        * 0.1
    )
    times = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        clf.scores(clip_features(clf.encoder, x, 0, len(x)))
        times.append(time.perf_counter() - t)
    times = times[1:]
    return round(1000 * float(np.median(times)), 1)


class LanguageGraph(torch.nn.Module):
    """One language of a multi-domain model as a runtime graph: raw encoder outputs (Whisper
    ``(L+1, T, D)``, GE2E ``(256,)``) -> class probabilities; downsampled and standardised as in
    training.
    With ``linear``, the mean of the model's and the linear head's probabilities; the linear head
    reads each Whisper input's per-layer time mean and std, as the feature cache pools them."""

    def __init__(self, model: SERModel, li: int, linear: heads.PooledHead | None = None):
        super().__init__()
        self.model, self.li, self.linear = model, li, linear
        self.eval()  # the exporter restores this mode on every submodule afterwards

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *whisper, ge2e = inputs
        batch = {
            v: b.standardize(downsample(h)[None])
            for v, b, h in zip(self.model.variants, self.model.branches, whisper)
        }
        mask = torch.ones_like(
            batch[self.model.variants[0]][:, 0, :, 0], dtype=torch.bool
        )  # (1, steps)
        batch.update(ge2e=ge2e[None], lang=torch.tensor([self.li]), mask=mask)
        probs = torch.softmax(self.model.language_logits(batch, self.li), -1)[0]
        if self.linear is None:
            return probs
        raw = dict(zip(self.model.variants, whisper))
        pooled = {
            v: torch.cat([raw[v].mean(1), raw[v].std(1, unbiased=False)], -1)[None]
            for v in self.linear.names
        }
        return (probs + torch.softmax(self.linear(pooled), -1)[0]) / 2


def export_language(
    model: SERModel,
    li: int,
    names: dict[str, str],
    path: Path,
    linear: heads.PooledHead | None = None,
) -> Path:
    """``names``: cache variant -> bundle encoder name (the graph's input names); ``linear``: a
    linear head on some of ``model``'s Whisper inputs, averaged in."""
    args = tuple(
        torch.randn(layers, 50, branch.mu.shape[-1])
        for layers, branch in zip(model.layers, model.branches)
    )
    args += (torch.rand(256),)
    inputs = [names[v] for v in model.variants] + [next(n for v, n in names.items() if is_voice(v))]
    with torch.no_grad():
        torch.onnx.export(
            LanguageGraph(model, li, linear),
            args,
            str(path),
            input_names=inputs,
            output_names=["probs"],
            dynamic_axes={names[v]: {1: "steps"} for v in model.variants},
            opset_version=17,
            dynamo=False,
        )
    return path


def build(out: Path = DEFAULT, seed: int = data.SEED) -> dict:
    cv_path, core_path = ARTIFACTS / "distill.json", ARTIFACTS / "core.json"
    for path, how in ((cv_path, "python -m train.distill"), (core_path, "python -m train.core")):
        if not path.exists():
            raise SystemExit(f"{path} missing: run {how} first")
    cv = json.loads(cv_path.read_text())
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(data.corpora())
    everyone = np.arange(len(ds))
    probs, genotypes = teacher_probs(ds, everyone, seed)  # the teacher sees every speaker
    path, extra = STUDENTS[SHIPPED]  # the clean clips and each training view of them
    views = {(path, v): student_dataset(path, v) for v in (CLEAN, *extra)}
    student, _ = fit_multi_domain(SHIPPED, views, everyone, genotypes, probs, seed)
    languages = {}
    for li, (lang, corpus) in enumerate(zip(ds.langs, ds.corpora)):
        idx, n = ds.of(li), len(ds.labels[li])
        linear = fit_linear(
            SHIPPED, corpus, ds.y.numpy()[idx], probs.numpy()[idx, :n], np.arange(len(idx)), seed
        )
        head_file = f"head-{lang}.onnx"
        export_language(student, li, STUDENT, out / head_file, linear)
        r = cv[lang]
        mean = lambda k, m="ua": round(float(np.mean(r[k][m])), 4)
        languages[lang] = {
            "labels": ds.labels[li],
            "head": head_file,
            "training": summary(data.clips(corpus)),
            "metrics": {
                "protocol": f"speaker-independent, 4 folds x {len(r['teacher']['ua']) // 4} seeds "
                "(python -m train.distill)",
                "ua_mean": mean(f"ensemble {SHIPPED}"),
                "ua_std": round(float(np.std(r[f"ensemble {SHIPPED}"]["ua"])), 4),
                "wa_mean": mean(f"ensemble {SHIPPED}", "wa"),
                "teacher_ua": mean("teacher"),
                "one_pass_ua": mean("ensemble one-pass"),
                **{f"ua_{c}": mean(f"ensemble {SHIPPED} @ {c}") for c in TESTS[1:]},
            },
            "tower_genotype": genotypes[lang],
        }
    languages[core.LANG] = core_language(out, json.loads(core_path.read_text()), seed)
    prior = enrolment_prior(out, seed)
    shared.to_numpy(shared.fit(data.corpora(), seed=seed)).save(
        out / SHARED
    )  # what rtser enroll builds on
    encoders = {}
    for variant, name in STUDENT.items():
        src = onnx_of(variant)
        dst = out / src.name
        if not dst.exists() or sha256(dst) != sha256(
            src
        ):  # re-commit encoders only when they change
            shutil.copyfile(src, dst)
        encoders[name] = {"file": dst.name, "sha256": sha256(dst)}
    files = sorted(
        [spec["head"] for spec in languages.values()]
        + [e["file"] for e in encoders.values()]
        + [SHARED, PRIOR]
    )
    for stale in {p.name for p in out.glob("*.onnx")} - set(files) - {vad.FILE}:
        (out / stale).unlink()
    manifest = {
        "format": FORMAT,
        "name": "rtser-default",
        "rtser_version": __version__,
        "created": time.strftime("%Y-%m-%d"),
        "frontend": {
            "sample_rate": frontend.SAMPLE_RATE,
            "n_fft": frontend.N_FFT,
            "hop": frontend.HOP,
            "whisper_mels": 80,
            "ge2e_mels": 40,
        },
        "window_s": 3.0,
        "hop_s": CHUNK / frontend.SAMPLE_RATE,
        "student": "mean of a multi-domain head (input gates, searched towers) on int8 "
        "whisper-base (layers 0-4) + GE2E and a linear head on int8 whisper-base, on streaming "
        "chunk features (rtser.pipeline.features), trained on "
        "clean clips and phone-line and noisy views of them (train.augment)",
        "encoders": encoders,
        "languages": languages,
        "shared": SHARED,
        "prior": prior,
        "files": {f: sha256(out / f) for f in files},
        "built_with": {
            "seed": seed,
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "seconds": round(time.time() - t0),
        },
    }
    vad.add_silero(out, manifest)
    return write_manifest(out, manifest, languages)


def write_manifest(out: Path, manifest: dict, timed) -> dict:
    """Write the manifest, time the languages ``timed`` on the bundle as written (it checks the
    hashes), and write it again with their speed."""
    save(out, manifest)
    for lang in timed:
        manifest["languages"][lang]["metrics"]["ms_per_3s_clip_1_thread"] = ms_per_clip(out, lang)
    save(out, manifest)
    return manifest


def enrolment_prior(out: Path, seed: int) -> dict:
    """``train.core.emotions_head`` on every corpus, as ``PRIOR``; the manifest's ``prior``
    entry."""
    head, labels = core.emotions_head(data.corpora(), seed)
    head.save(out / PRIOR)
    return {"head": PRIOR, "labels": labels, "l2": core.EMOTIONS_L2, "corpora": data.corpora()}


def core_language(out: Path, loco: dict, seed: int) -> dict:
    """The ``any`` head (``train.core``) on every corpus, with its leave-one-corpus-out metrics."""
    views, y, _ = core.training_views()
    held = loco["held_out"]
    head_file = f"head-{core.LANG}.npz"
    core.fit_views(views, y, np.ones(len(y), bool), loco["l2"], seed).save(out / head_file)
    speakers = {
        c.speaker for name in data.corpora() for c in data.clips(name) if c.label in core.CORE
    }
    return {
        "labels": core.CORE,
        "head": head_file,
        "training": {
            "corpus": "+".join(data.corpora()),
            "clips": len(y),
            "speakers": len(speakers),
            "label_counts": {c: int((y == k).sum()) for k, c in enumerate(core.CORE)},
        },
        "metrics": {
            "protocol": "leave one corpus out (python -m train.core)",
            "ua_mean": round(float(np.mean([r["ua"] for r in held.values()])), 4),
            "ua_std": round(float(np.std([r["ua"] for r in held.values()])), 4),
            "wa_mean": round(float(np.mean([r["wa"] for r in held.values()])), 4),
        },
        "l2": loco["l2"],
    }


CORPUS_NAMES = {
    "emodb": "EmoDB",
    "emovo": "EMOVO",
    "ravdess": "RAVDESS",
    "urdu": "URDU",
    "esuah": "esuah (UEM Madrid)",
}


def accuracy_table(manifest: dict) -> str:
    """README's accuracy table, from the manifest's metrics (which ``train.distill`` measured)."""
    lines = [
        "| lang | corpus | classes | UA (± std over folds × seeds) | WA | UA through 8 kHz μ-law | "
        "UA through 300–3400 Hz + 8 kHz μ-law | UA at 10 dB SNR | teacher UA (fp32, bigger model) "
        "|",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, spec in manifest["languages"].items():
        m, t = spec["metrics"], spec["training"]
        if lang == core.LANG:
            n = len(t["corpus"].split("+"))
            lines.append(
                f"| {lang} | all {n} corpora with emotion categories, each held out in turn (leave "
                f"one corpus out) | {len(spec['labels'])} | {m['ua_mean']:.2f} ± {m['ua_std']:.2f} "
                "| – | – | – | – | – |"
            )
            continue
        if "teacher_ua" not in m:  # a numpy head (rtser enroll's recipe): speaker-independent CV
            lines.append(
                f"| {lang} | {CORPUS_NAMES.get(t['corpus'], t['corpus'])} ({t['speakers']} "
                f"speakers) | {len(spec['labels'])} | {m['ua_mean']:.2f} ± {m['ua_std']:.2f} "
                f"| {m['wa_mean']:.2f} | – | – | – | – |"
            )
            continue
        lines.append(
            f"| {lang} | {CORPUS_NAMES.get(t['corpus'], t['corpus'])} ({t['speakers']} speakers) | "
            f"{len(spec['labels'])} | {m['ua_mean']:.2f} ± {m['ua_std']:.2f} | {m['wa_mean']:.2f} "
            f"| {m['ua_mulaw']:.2f} | {m['ua_tel']:.2f} | {m['ua_snr10']:.2f} | "
            f"{m['teacher_ua']:.2f} |"
        )
    return "\n".join(lines)


def write_report(manifest: dict, out: Path) -> None:
    from train.markdown import machine, write_section

    write_section(ROOT / "README.md", "accuracy", accuracy_table(manifest))
    size = sum((out / f).stat().st_size for f in manifest["files"])
    lines = [
        "## Shipped bundle (`python -m export.bundle`)",
        "",
        f"Student: {manifest['student']}, distilled from the teacher trained on every speaker. "
        f"Bundle size {size / 1e6:.1f} MB. UA from `python -m train.distill` (4 "
        "speaker-independent folds × seeds); "
        f"ms per 3 s clip: chunk encoders + head, 1 thread, median of 20, on {machine()}.",
        "",
        "| lang | teacher fp32 UA | student, one-pass features (previous runtime) | student, chunk "
        "features, "
        "augmented (shipped) | shipped − teacher | ms / 3 s clip |",
        "|---|---|---|---|---|---|",
    ]
    for lang, spec in manifest["languages"].items():
        m = spec["metrics"]
        if "teacher_ua" not in m:
            continue
        lines.append(
            f"| {lang} | {m['teacher_ua']:.3f} | {m['one_pass_ua']:.3f} | {m['ua_mean']:.3f} | "
            f"{m['ua_mean'] - m['teacher_ua']:+.3f} | {m['ms_per_3s_clip_1_thread']} |"
        )
    write_section(ROOT / "docs" / "results.md", "bundle", "\n".join(lines), title="# Results\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=DEFAULT)
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    torch.set_num_threads(2)
    write_report(build(args.out), args.out)


if __name__ == "__main__":
    main()
