"""Feature cache: every layer of every encoder for every clip in ../shared/data.

    python -m train.features [--encoders artifacts/encoders] [--variants whisper-base.fp32
    whisper-base-l4.int8@chunks+phone ...]

Each clip is cut to its speech span exactly as ``Recognizer.predict`` and the stream's segment
events cut it. Plain variants encode that span in one pass (the teacher's inputs); ``@chunks``
variants are the runtime's own streaming features of it (``rtser.pipeline.features``, the students'
inputs).
A ``+view`` suffix encodes the clip as a phone line delivers it (one of ``VIEWS``: the training
views and test conditions of ``train.augment``), seeded per clip; the VAD cuts the degraded audio,
as it would in the runtime.
Per encoder variant (an ONNX file, keyed by its sha256) and corpus, shards of clips are written
atomically under ``$RTSER_CACHE/features`` (outside git), so an interrupted run resumes where it
stopped. Whisper shards hold time-pooled ``mean``/``std`` per layer (float32) and the full time
sequences (float16); GE2E shards hold the 256-d embedding.
"""

from __future__ import annotations

import argparse
import hashlib
import zlib
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtser.audio import load
from rtser.bundle import DEFAULT, Bundle, sha256
from rtser.pipeline.features import CHUNK, CONTEXT, ChunkEncoder, clip_features
from rtser.pipeline.frontend import HOP, SAMPLE_RATE, log_mel, mel_power
from rtser.pipeline.sessions import session
from rtser.pipeline.vad import SILERO, Vad, VadConfig

from . import augment, data
from .data import CACHE

SHARD = 64
PREPROCESS = "silero-v4"  # bump when clip_bounds changes
# bump when rtser.pipeline.features changes what it computes (voice1: GE2E of the first chunk)
CHUNKS = "voice1"
# a variant name ending so: features as the runtime streams them (rtser.pipeline.features)
CHUNKED = "@chunks"
AUGMENT = "aug1"  # bump when train.augment changes
STUDENT_INPUTS = ("whisper-base-l4.int8@chunks", "ge2e.int8@chunks")
VIEWS = (
    "phone",
    "noisy",
    "tel",
    "snr10",
    "snr0",
    "mulaw",
    "line",
)  # append only: the index seeds a view
assert set(VIEWS) == {*augment.VIEWS, *augment.TESTS}
CLEAN = "clean"  # the view that is the clip itself
VARIANTS = (
    "whisper-base.fp32",
    "whisper-tiny.en.fp32",
    "ge2e.fp32",  # the teacher
    *STUDENT_INPUTS,  # the shipped students ...
    *(f"{v}+{view}" for view in VIEWS for v in STUDENT_INPUTS),  # ... on degraded views
    "whisper-base.int8",
    "ge2e.int8",
)  # the previous runtime's students
ENCODERS = Path(__file__).resolve().parents[1] / "artifacts" / "encoders"
MAX_SECONDS = 30.0  # Whisper's position table covers 30 s
MIN_SAMPLES = 4 * HOP


def is_voice(name: str) -> bool:
    """Whether a variant is the voice encoder's (GE2E): variants are named after their encoder."""
    return name.startswith("ge2e")


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
            if is_voice(name):
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
    return Vad(VadConfig(), Bundle(DEFAULT).vad_model(SILERO))  # the shipped bundle's Silero graph


def clip_audio(path: Path) -> np.ndarray:
    """A training clip's speech span, as ``Recognizer.predict`` cuts it."""
    audio = load(path)
    a, b = clip_bounds(audio)
    return audio[a:b]


def viewed(variant: str, view: str | None) -> str:
    """The cache variant of ``variant`` under ``view`` (None or ``CLEAN``: the clip as recorded)."""
    return variant if view in (None, CLEAN) else f"{variant}+{view}"


def split_variant(variant: str) -> tuple[str, bool, str | None]:
    """``"whisper-base-l4.int8@chunks+phone"`` -> encoder name, chunked?, view (None: the clean
    clip)."""
    name, _, view = variant.partition("+")
    if view and view not in VIEWS:
        raise ValueError(f"unknown view {view!r} in {variant!r} (have: {', '.join(VIEWS)})")
    return name.removesuffix(CHUNKED), name.endswith(CHUNKED), view or None


def variant_dir(variant: str, onnx: Path, root: Path = CACHE / "features") -> Path:
    _, chunked, view = split_variant(variant)
    mode = (
        f"{PREPROCESS}-chunks{CHUNK // SAMPLE_RATE}s{CONTEXT / SAMPLE_RATE:g}s-{CHUNKS}"
        if chunked
        else PREPROCESS
    )
    if view:
        mode += f"-{AUGMENT}-{view}"
    return root / f"{onnx.name.removesuffix('.onnx')}-{sha256(onnx)[:12]}-{mode}"


def onnx_of(variant: str) -> Path:
    name = split_variant(variant)[0]
    return Path(name) if name.endswith(".onnx") else ENCODERS / f"{name}.onnx"


@cache
def _babble_sources(corpus: str) -> list[data.Clip]:
    """Clips babble for ``corpus`` is made of: every other corpus's."""
    return [c for other in data.corpora() if other != corpus for c in data.clips(other)]


def view_audio(clip: data.Clip, view: str | None) -> np.ndarray:
    """A clip as a phone line delivers it (``view`` of ``VIEWS``; None: as recorded). Seeded by the
    clip's path; babble comes from the other corpora (never a speaker of the clip's test fold)."""
    audio = load(clip.path)
    if view is None:
        return audio
    rng = np.random.default_rng(
        [data.SEED, VIEWS.index(view), zlib.crc32(str(clip.path.relative_to(data.DATA)).encode())]
    )
    others = _babble_sources(clip.corpus)
    babble = lambda: load(others[rng.integers(len(others))].path)
    fn = augment.VIEWS.get(view) or augment.TESTS[view]
    return fn(audio, rng, babble)


class ClipFeatures:
    """``{variant: onnx path}`` of one view -> per clip ``{variant: features}``: one-pass encodings
    of the speech span (``Encoders``) for plain variants, the runtime's chunk features for
    ``@chunks`` ones."""

    def __init__(self, variants: dict[str, Path], threads: int):
        split = {n: split_variant(n) for n in variants}
        views = {view for _, _, view in split.values()}
        if len(views) != 1:
            raise ValueError(f"one view at a time, not {views}")
        self.view = views.pop()
        self.encoders = Encoders(
            {e: variants[n] for n, (e, chunked, _) in split.items() if not chunked}, threads
        )
        self.chunked = ChunkEncoder(
            {e: session(variants[n], threads) for n, (e, chunked, _) in split.items() if chunked}
        )
        self.names = {(e, chunked): n for n, (e, chunked, _) in split.items()}

    def __call__(self, clip: data.Clip) -> dict[str, np.ndarray]:
        audio = view_audio(clip, self.view)
        a, b = clip_bounds(audio)
        out = (
            {self.names[e, False]: x for e, x in self.encoders(audio[a:b]).items()}
            if self.encoders.sessions
            else {}
        )
        if self.chunked.sessions:
            out.update(
                {
                    self.names[e, True]: x
                    for e, x in clip_features(self.chunked, audio, a, b).items()
                }
            )
        return out


def _shard_name(items: list[data.Clip]) -> str:
    key = hashlib.sha256("\n".join(str(c.path) for c in items).encode()).hexdigest()[:12]
    return f"shard-{key}.npz"


def build(variants: dict[str, Path], corpora=None, threads: int = 2) -> None:
    """Compute what is missing for each variant ``{name: onnx path}`` and corpus."""
    dirs = {name: variant_dir(name, p) for name, p in variants.items()}
    for corpus in corpora or data.corpora():
        items = data.clips(corpus)
        shards = [items[i : i + SHARD] for i in range(0, len(items), SHARD)]
        todo = {
            n: [s for s in shards if not (dirs[n] / corpus / _shard_name(s)).exists()]
            for n in variants
        }
        for view in sorted({split_variant(n)[2] for n, s in todo.items() if s}, key=str):
            names = sorted(n for n, s in todo.items() if s and split_variant(n)[2] == view)
            encoders = ClipFeatures({n: variants[n] for n in names}, threads)
            for shard in tqdm(shards, desc=f"{corpus} ({', '.join(names)})", unit="shard"):
                wanted = [n for n in names if shard in todo[n]]
                if not wanted:
                    continue
                outs = [encoders(c) for c in shard]
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
    """Everything cached for one variant (a name in ``ENCODERS`` or an ONNX path, ``@chunks`` or
    not, ``+view`` or not) and corpus, in manifest order."""
    directory = variant_dir(variant, onnx_of(variant))
    items = data.clips(corpus)
    parts = []
    for i in range(0, len(items), SHARD):
        path = directory / corpus / _shard_name(items[i : i + SHARD])
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run python -m train.features first")
        parts.append(np.load(path))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files if k != "seq" or seq}
    if seq and "seq" in out:
        bounds = np.concatenate([[0], np.cumsum(out["lengths"])])
        out["seq"] = [out["seq"][a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--encoders", type=Path, default=ENCODERS, help="folder of exported ONNX encoders"
    )
    ap.add_argument(
        "--variants",
        nargs="*",
        help=f"ONNX names in --encoders, @chunks for streamed features, +view for a degraded "
        f"view (default: {' '.join(VARIANTS)})",
    )
    ap.add_argument("--corpora", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    files = sorted(args.encoders.glob("*.onnx"))
    if not files:
        raise SystemExit(f"no encoders in {args.encoders}: run python -m export.onnx_export first")
    files = {p.name.removesuffix(".onnx"): p for p in files}
    wanted = args.variants or VARIANTS
    try:
        encoder = {v: split_variant(v)[0] for v in wanted}
    except ValueError as e:
        raise SystemExit(str(e)) from None
    missing = [v for v in wanted if encoder[v] not in files]
    if missing:
        raise SystemExit(f"not in {args.encoders}: {', '.join(missing)} (have: {', '.join(files)})")
    build({v: files[encoder[v]] for v in wanted}, args.corpora, args.threads)


if __name__ == "__main__":
    main()
