"""Feature cache: every layer of every encoder for every clip in ../shared/data.

    python -m train.features [--encoders build/encoders] [--variants whisper-base.int8 ...]

Each clip is cut to its speech span exactly as ``Recognizer.predict`` and the stream's segment
events cut it. Per encoder variant (an ONNX file, keyed by its sha256) and corpus, shards of clips are written
atomically under ``$RTSER_CACHE/features`` (outside git), so an interrupted run resumes where it
stopped. Whisper shards hold time-pooled ``mean``/``std`` per layer (float32) and the full time
sequences (float16); GE2E shards hold the 256-d embedding.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import webrtcvad
from tqdm import tqdm

from rtser.audio import load
from rtser.bundle import sha256
from rtser.encoders import Encoders

from . import data
from .data import CACHE

SHARD = 64
PREPROCESS = "speech-v2"  # bump when clip_audio changes
BUILD = Path(__file__).resolve().parents[1] / "build" / "encoders"


def clip_audio(path: Path) -> np.ndarray:
    """A training clip's speech span (the whole clip when no speech is found)."""
    return legacy_speech_audio(load(path))


def legacy_speech_audio(audio: np.ndarray, pad: int = 3200, frame: int = 480, min_speech: int = 5,
                        min_silence: int = 17) -> np.ndarray:
    """The cut that the feature cache (PREPROCESS ``speech-v2``) and the shipped heads were made
    with, frozen here: webrtcvad (aggressiveness 2, 30 ms frames) re-created after every segment,
    a segment opening on 5 consecutive speech frames and closing after 17 silent ones; first start
    to last end, 200 ms wider, zero-padded. The runtime has since moved to Silero VAD
    (``rtser.vad``); re-cutting the cache with it is a new PREPROCESS, due with the next retraining."""
    lead = -(-pad // frame) * frame
    x = np.pad(np.asarray(audio, np.float32), (lead, pad + frame))
    vad, speaking, run, start, last_end, bounds = webrtcvad.Vad(2), False, 0, 0, 0, []
    for at in range(0, len(x) - frame + 1, frame):
        speech = vad.is_speech((np.clip(x[at:at + frame], -1, 1) * 32767).astype("<i2").tobytes(), 16000)
        if not speaking:
            start, run = (at if run == 0 else start, run + 1) if speech else (start, 0)
            if run >= min_speech:
                speaking, run, last_end = True, 0, at + frame
                bounds.append(start)
            continue
        run, last_end = (0, at + frame) if speech else (run + 1, last_end)
        if run >= min_silence:
            speaking, run, vad = False, 0, webrtcvad.Vad(2)
            bounds.append(last_end)
    if speaking:
        bounds.append(last_end if run else len(x))
    return x[max(0, bounds[0] - pad): bounds[-1] + pad] if bounds else np.asarray(audio, np.float32)


def variant_dir(onnx: Path, root: Path = CACHE / "features") -> Path:
    return root / f"{onnx.name.removesuffix('.onnx')}-{sha256(onnx)[:12]}-{PREPROCESS}"


def _shard_name(items: list[data.Clip]) -> str:
    key = hashlib.sha256("\n".join(str(c.path) for c in items).encode()).hexdigest()[:12]
    return f"shard-{key}.npz"


def build(variants: dict[str, Path], corpora=None, threads: int = 2) -> None:
    """Compute what is missing for each variant ``{name: onnx path}`` and corpus."""
    dirs = {name: variant_dir(p) for name, p in variants.items()}
    for corpus in corpora or data.corpora():
        items = data.clips(corpus)
        shards = [items[i:i + SHARD] for i in range(0, len(items), SHARD)]
        todo = {n: [s for s in shards if not (dirs[n] / corpus / _shard_name(s)).exists()] for n in variants}
        names = sorted({n for n, s in todo.items() if s})
        if not names:
            continue
        encoders = Encoders({n: variants[n] for n in names}, threads=threads)
        for shard in tqdm(shards, desc=f"{corpus} ({', '.join(names)})", unit="shard"):
            wanted = [n for n in names if shard in todo[n]]
            if not wanted:
                continue
            outs = [encoders(clip_audio(c.path)) for c in shard]
            for n in wanted:
                _write(dirs[n] / corpus / _shard_name(shard), shard, [o[n] for o in outs])


def _write(path: Path, shard: list[data.Clip], arrays: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {"paths": np.array([str(c.path) for c in shard])}
    if arrays[0].ndim == 1:
        fields["embedding"] = np.stack(arrays).astype(np.float32)
    else:
        fields["mean"] = np.stack([a.mean(axis=1) for a in arrays]).astype(np.float32)
        fields["std"] = np.stack([a.std(axis=1) for a in arrays]).astype(np.float32)
        fields["lengths"] = np.array([a.shape[1] for a in arrays])
        fields["seq"] = np.concatenate([a.transpose(1, 0, 2) for a in arrays]).astype(np.float16)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **fields)
    tmp.replace(path)


def load_features(variant: Path | str, corpus: str, seq: bool = False) -> dict[str, object]:
    """Everything cached for one variant (its ONNX path) and corpus, in manifest order."""
    onnx = Path(variant) if Path(variant).suffix == ".onnx" else BUILD / f"{variant}.onnx"
    items = data.clips(corpus)
    parts = []
    for i in range(0, len(items), SHARD):
        path = variant_dir(onnx) / corpus / _shard_name(items[i:i + SHARD])
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run python -m train.features first")
        parts.append(np.load(path))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files if k != "seq" or seq}
    if seq and "seq" in out:
        bounds = np.concatenate([[0], np.cumsum(out["lengths"])])
        out["seq"] = [out["seq"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", type=Path, default=BUILD, help="folder of exported ONNX encoders")
    ap.add_argument("--variants", nargs="*", help="e.g. whisper-base.int8 ge2e.fp32 (default: all)")
    ap.add_argument("--corpora", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    files = sorted(args.encoders.glob("*.onnx"))
    if not files:
        raise SystemExit(f"no encoders in {args.encoders}: run python -m export.onnx_export first")
    variants = {p.name.removesuffix(".onnx"): p for p in files}
    if args.variants:
        variants = {k: variants[k] for k in args.variants}
    build(variants, args.corpora, args.threads)


if __name__ == "__main__":
    main()
