"""Feature cache: every layer of every encoder for every clip in ../shared/data.

    python -m train.features [--encoders build/encoders] [--variants whisper-base.fp32 whisper-base-l4.int8@chunks ...]

Each clip is cut to its speech span exactly as ``Recognizer.predict`` and the stream's segment
events cut it. Plain variants encode that span in one pass (the teacher's inputs); ``@chunks``
variants are the runtime's own streaming features of it (``rtser.chunks``, the students' inputs).
Per encoder variant (an ONNX file, keyed by its sha256) and corpus, shards of clips are written
atomically under ``$RTSER_CACHE/features`` (outside git), so an interrupted run resumes where it
stopped. Whisper shards hold time-pooled ``mean``/``std`` per layer (float32) and the full time
sequences (float16); GE2E shards hold the 256-d embedding.
"""
from __future__ import annotations

import argparse
import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtser.audio import load
from rtser.bundle import DEFAULT, sha256
from rtser.chunks import CHUNK, CONTEXT, ChunkEncoder, clip_features
from rtser.encoders import session
from rtser.frontend import HOP, SAMPLE_RATE, log_mel, mel_power
from rtser.vad import Vad, VadConfig

from . import data
from .data import CACHE

SHARD = 64
PREPROCESS = "silero-v3"  # bump when clip_bounds changes
CHUNKED = "@chunks"       # a variant name ending so: features as the runtime streams them (rtser.chunks)
VARIANTS = ("whisper-base.fp32", "whisper-tiny.en.fp32", "ge2e.fp32",  # the teacher
            "whisper-base-l4.int8@chunks", "ge2e.int8@chunks",          # the shipped students
            "whisper-base.int8", "ge2e.int8")                           # the previous runtime's students
BUILD = Path(__file__).resolve().parents[1] / "build" / "encoders"
MAX_SECONDS = 30.0  # Whisper's position table covers 30 s
MIN_SAMPLES = 4 * HOP


class Encoders:
    """One pass over a whole clip (the teacher's inputs): ``{name: onnx path}`` -> callable giving
    ``{name: (L+1, T', D) hidden states or (256,)}``.
    Names starting with ``ge2e`` take the 40-band power mel; all others Whisper's log-mel."""

    def __init__(self, paths: dict[str, Path], threads: int = 1):
        self.sessions = {name: session(p, threads) for name, p in paths.items()}

    def __call__(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        audio = np.asarray(audio, np.float32)[: int(MAX_SECONDS * SAMPLE_RATE)]
        if len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        out, mel = {}, None
        for name, sess in self.sessions.items():
            if name.startswith("ge2e"):
                out[name] = sess.run(None, {"mels": mel_power(audio)[None]})[0][0]
            else:
                mel = log_mel(audio) if mel is None else mel
                out[name] = sess.run(None, {"mel": mel[None]})[0][:, 0]
        return out


def clip_bounds(audio: np.ndarray) -> tuple[int, int]:
    """Where the runtime cuts a labelled clip (``Vad.labelled_span``, as ``rtser enroll`` does)."""
    return _vad().labelled_span(audio)


@lru_cache(maxsize=1)
def _vad() -> Vad:
    return Vad(VadConfig(), DEFAULT / "silero_vad.onnx")  # the shipped bundle's Silero graph


def clip_audio(path: Path) -> np.ndarray:
    """A training clip's speech span, as ``Recognizer.predict`` cuts it."""
    audio = load(path)
    a, b = clip_bounds(audio)
    return audio[a:b]


def variant_dir(onnx: Path, chunked: bool = False, root: Path = CACHE / "features") -> Path:
    mode = f"{PREPROCESS}-chunks{CHUNK // SAMPLE_RATE}s{CONTEXT / SAMPLE_RATE:g}s" if chunked else PREPROCESS
    return root / f"{onnx.name.removesuffix('.onnx')}-{sha256(onnx)[:12]}-{mode}"


def onnx_of(variant: str) -> Path:
    name = variant.removesuffix(CHUNKED)
    return Path(name) if name.endswith(".onnx") else BUILD / f"{name}.onnx"


class ClipFeatures:
    """``{variant: onnx path}`` -> per clip ``{variant: features}``: one-pass encodings of the speech
    span (``Encoders``) for plain variants, the runtime's chunk features for ``@chunks`` ones."""

    def __init__(self, variants: dict[str, Path], threads: int):
        plain = {n: p for n, p in variants.items() if not n.endswith(CHUNKED)}
        self.encoders = Encoders(plain, threads=threads) if plain else None
        self.chunked = ChunkEncoder({n.removesuffix(CHUNKED): session(p, threads)
                                     for n, p in variants.items() if n.endswith(CHUNKED)})

    def __call__(self, path: Path) -> dict[str, np.ndarray]:
        audio = load(path)
        a, b = clip_bounds(audio)
        out = self.encoders(audio[a:b]) if self.encoders else {}
        if self.chunked.sessions:
            out.update({n + CHUNKED: x for n, x in clip_features(self.chunked, audio, a, b).items()})
        return out


def _shard_name(items: list[data.Clip]) -> str:
    key = hashlib.sha256("\n".join(str(c.path) for c in items).encode()).hexdigest()[:12]
    return f"shard-{key}.npz"


def build(variants: dict[str, Path], corpora=None, threads: int = 2) -> None:
    """Compute what is missing for each variant ``{name: onnx path}`` and corpus."""
    dirs = {name: variant_dir(p, name.endswith(CHUNKED)) for name, p in variants.items()}
    for corpus in corpora or data.corpora():
        items = data.clips(corpus)
        shards = [items[i:i + SHARD] for i in range(0, len(items), SHARD)]
        todo = {n: [s for s in shards if not (dirs[n] / corpus / _shard_name(s)).exists()] for n in variants}
        names = sorted({n for n, s in todo.items() if s})
        if not names:
            continue
        encoders = ClipFeatures({n: variants[n] for n in names}, threads)
        for shard in tqdm(shards, desc=f"{corpus} ({', '.join(names)})", unit="shard"):
            wanted = [n for n in names if shard in todo[n]]
            if not wanted:
                continue
            outs = [encoders(c.path) for c in shard]
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


def load_features(variant: str, corpus: str, seq: bool = False) -> dict[str, object]:
    """Everything cached for one variant (a name in ``BUILD`` or an ONNX path, ``@chunks`` or not)
    and corpus, in manifest order."""
    directory = variant_dir(onnx_of(variant), variant.endswith(CHUNKED))
    items = data.clips(corpus)
    parts = []
    for i in range(0, len(items), SHARD):
        path = directory / corpus / _shard_name(items[i:i + SHARD])
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
    ap.add_argument("--variants", nargs="*",
                    help=f"ONNX names in --encoders, @chunks for streamed features (default: {' '.join(VARIANTS)})")
    ap.add_argument("--corpora", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    files = sorted(args.encoders.glob("*.onnx"))
    if not files:
        raise SystemExit(f"no encoders in {args.encoders}: run python -m export.onnx_export first")
    files = {p.name.removesuffix(".onnx"): p for p in files}
    wanted = args.variants or VARIANTS
    missing = [v for v in wanted if v.removesuffix(CHUNKED) not in files]
    if missing:
        raise SystemExit(f"not in {args.encoders}: {', '.join(missing)} (have: {', '.join(files)})")
    build({k: files[k.removesuffix(CHUNKED)] for k in wanted}, args.corpora, args.threads)


if __name__ == "__main__":
    main()
