"""Encoder speed, sizes and linear probes -> docs/benchmarks.md (section "encoders").

    python bench/encoders.py [--reps 10] [--only speed|probe]

Speed: ms per window (median of --reps after a warm-up) for 1, 3 and 10 s of real speech, on 1
and 2 threads: PyTorch fp32, ONNX fp32, ONNX int8 (our unpadded windows) and CTranslate2 int8
(its own path, always padded to 30 s). Probe: logistic regression on one layer's time-pooled
mean+std (speaker-independent folds, seed 12345) per corpus and layer: fp32 vs int8 encoders over
the whole speech span, and the int8 chunk features the runtime streams, from the feature cache
(``python -m train.features``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import median_ms  # noqa: E402
from export import sources  # noqa: E402
from export.whisper import WindowEncoder, load_encoder  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.pipeline.frontend import log_mel  # noqa: E402
from rtser.pipeline.sessions import session  # noqa: E402
from train import data  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402

BUILD = ROOT / "artifacts" / "encoders"
MODELS = {
    "whisper-base": ("base", None),
    "whisper-base-l4": ("base", 4),
    "whisper-tiny.en": ("tiny.en", None),
}  # name -> (weights, cut)
VARIANTS = (
    "whisper-base.fp32",
    "whisper-base.int8",
    "whisper-base-l4.int8@chunks",
    "whisper-tiny.en.fp32",
)
# @chunks: as the runtime streams them (what ships); all in the cache that `python -m
# train.features` builds


def speed(reps: int) -> str:
    import ctranslate2
    import torch

    speech = np.concatenate([load(c.path) for c in data.clips("emodb")[:8]])
    rows = []
    for name, (src, layers) in MODELS.items():
        module = WindowEncoder(load_encoder(src), layers)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fp32, int8 = (
                session(BUILD / f"{name}.fp32.onnx", threads),
                session(BUILD / f"{name}.int8.onnx", threads),
            )
            ct2_ms = "–"  # CTranslate2 runs whole encoders only
            if layers is None:
                ct2 = ctranslate2.models.Whisper(
                    str(sources.whisper_model_dir(src)),
                    device="cpu",
                    compute_type="int8",
                    intra_threads=threads,
                )
                full = ctranslate2.StorageView.from_array(
                    np.ascontiguousarray(log_mel(np.resize(speech, 480000))[None])
                )
                ct2_ms = (
                    f"{median_ms(lambda: ct2.encode(full, to_cpu=True), max(3, reps // 3)):.1f}"
                )
            for seconds in (1, 3, 10):
                mel = log_mel(speech[: 16000 * seconds])[None]
                tmel = torch.from_numpy(mel)
                with torch.no_grad():
                    pt = median_ms(lambda: module(tmel), reps)
                f = median_ms(lambda: fp32.run(None, {"mel": mel}), reps)
                q = median_ms(lambda: int8.run(None, {"mel": mel}), reps)
                rows.append(
                    f"| {name} | {threads} | {seconds} s | {pt:.1f} | {f:.1f} | {q:.1f} | {ct2_ms} "
                    "|"
                )
                print(rows[-1], flush=True)
    sizes = [
        f"| {p.name} | {p.stat().st_size / 1e6:.1f} MB |" for p in sorted(BUILD.glob("*.onnx"))
    ]
    return "\n".join(
        [
            "### Speed (ms per window, median)",
            "",
            "| encoder | threads | window | PyTorch fp32 | ONNX fp32 | ONNX int8 | CTranslate2 "
            "int8 (30 s padded) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "### Model files",
            "",
            "| file | size |",
            "|---|---|",
            *sizes,
        ]
    )


def probe() -> str:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from train.features import load_features
    from train.metrics import ua

    lines = [
        "### Linear probes (UA per layer; layer 0 = input embedding)",
        "",
        "| corpus | encoder | " + " | ".join(f"L{i}" for i in range(7)) + " |",
        "|---|---|" + "---|" * 7,
    ]
    for corpus in data.corpora():
        items = data.clips(corpus)
        labels = data.labels(items)
        y = np.array([labels.index(c.label) for c in items])
        folds = data.fold_indices([c.speaker for c in items])
        for variant in VARIANTS:
            f = load_features(variant, corpus)
            x = np.concatenate([f["mean"], f["std"]], axis=-1)
            cells = []
            for layer in range(x.shape[1]):
                pred = np.zeros_like(y)
                for tr, te in folds:
                    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
                    pred[te] = clf.fit(x[tr, layer], y[tr]).predict(x[te, layer])
                cells.append(ua(y, pred, len(labels)))
            best = int(np.argmax(cells))
            row = [f"**{v:.3f}**" if i == best else f"{v:.3f}" for i, v in enumerate(cells)] + [
                ""
            ] * (7 - len(cells))
            lines.append(f"| {corpus} | {variant} | " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument(
        "--only", choices=["speed", "probe"], help="run one part (each has its own section)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    if args.only != "probe":
        t0 = time.time()
        table = speed(args.reps)
        write_section(
            args.out,
            "encoders-speed",
            "\n".join(
                [
                    "## Encoders: speed and size (`python bench/encoders.py --only speed`)",
                    "",
                    f"Machine: {machine()}. Input: real EmoDB speech; nothing else running. Run "
                    f"time {time.time() - t0:.0f} s. `whisper-base-l4` is what the runtime runs: "
                    "whisper-base cut after block 4, int8 with its input "
                    "convolutions kept in fp32 (`export/onnx_export.py`).",
                    "",
                    table,
                ]
            ),
        )
    if args.only != "speed":
        t0 = time.time()
        table = probe()
        write_section(
            args.out,
            "encoders-probe",
            "\n".join(
                [
                    "## Encoders: linear probes, fp32 vs int8 (`python bench/encoders.py --only "
                    "probe`)",
                    "",
                    "Logistic regression (C = 0.1, standardised) on one layer's time mean + std; "
                    "speaker-independent folds (leave-one-speaker-out ≤ 10 speakers, else 5 "
                    "speaker groups, seed 12345); each clip cut to its VAD speech span as the "
                    "runtime does. UA pooled over folds. Run time "
                    f"{time.time() - t0:.0f} s.",
                    "",
                    table,
                ]
            ),
        )


if __name__ == "__main__":
    main()
