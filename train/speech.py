"""Speech or music: the gate that keeps hold music out of the labels.

Silero and the VAD's second opinion (``rtser.pipeline.vad``) take some music for speech: it is
loud and periodic, as a raised voice is. The encoders hear the difference. The gate is a two-class
numpy head (``rtser.pipeline.heads``) on the shipped Whisper states' pooled features:

- speech: every corpus's clips, clean and through a training view drawn per clip
  (``train.augment.VIEWS``);
- music: Debian's game soundtracks (``MUSIC``), clean and through 8 kHz μ-law, as the stretches
  that the runtime's VAD takes for speech in them and as random excerpts. Never Asterisk's hold
  music: ``bench/calls.py`` tests on that.

Each corpus weighs the same, and speech and music weigh alike. A span is music when its
probability of speech is at most the threshold, chosen leaving one corpus out: the highest that
loses at most ``MAX_LOST`` of any held-out corpus's clips in any view. Music the gate never heard
is measured leaving one package out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from rtser.audio import SAMPLE_RATE, resample

from . import augment, data
from .data import CACHE
from .distill import STUDENT, student_inputs
from .features import CLEAN
from .packages import unpacked
from .strangers import training_rows

MUSIC = ("asc-music", "drascula-music")  # game soundtracks: orchestral, rock, electronic, ambient
WHISPER = STUDENT["whisper-base-l4.int8@chunks"]  # the bundle input the gate reads
TEST_VIEWS = (CLEAN, "mulaw", "noisy")  # where a held-out corpus's speech must pass
EXCERPT_EVERY_S = 5.0  # one random excerpt per this much music, per line
EXCERPT_S = (0.6, 4.0)  # as long as most segments the VAD cuts
MAX_LOST = 0.01  # the share of a held-out corpus's clips the gate may take for music
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
L2 = 0.1


def music_files() -> dict[str, list[Path]]:
    """Each package's tracks, each recording once (a game may ship one per language)."""
    out, seen = {}, set()
    for package in MUSIC:
        folder = unpacked(package, CACHE / "debian" / package)
        tracks = []
        for path in sorted(p for p in folder.rglob("*") if p.suffix in (".ogg", ".mp3", ".wav")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                tracks.append(path)
        out[package] = tracks
    return out


def _lines(x: np.ndarray) -> dict[str, np.ndarray]:
    """A track at 16 kHz, clean and as an 8 kHz μ-law call delivers it."""
    narrow, rate = augment.g711(x)
    return {CLEAN: x, "mulaw": resample(narrow, rate, SAMPLE_RATE).astype(np.float32)}


def _track_features(rec, x: np.ndarray, rng) -> list[np.ndarray]:
    """Pooled Whisper features of the segments a stream finds in ``x`` and of random excerpts."""
    from rtser.pipeline.features import clip_features
    from rtser.pipeline.heads import pool

    def pooled(a: int, b: int) -> np.ndarray:
        return pool(clip_features(rec.classifier.encoder, x, a, b)[WHISPER])

    session = rec.stream()
    events = session.push(x) + session.close()
    pad, post_pad = rec.vad.config.pad, rec.vad.config.post_pad
    rows = [
        pooled(round(e.start * SAMPLE_RATE) - pad, round(e.end * SAMPLE_RATE) + post_pad)
        for e in events
        if e.type == "segment"
    ]
    for _ in range(max(1, int(len(x) / SAMPLE_RATE / EXCERPT_EVERY_S))):
        n = int(rng.uniform(*EXCERPT_S) * SAMPLE_RATE)
        a = int(rng.integers(0, max(1, len(x) - n)))
        rows.append(pooled(a, a + n))
    return rows


def music_features(seed: int = data.SEED) -> dict[str, np.ndarray]:
    """Per package, the pooled Whisper features of its music ``(N, L+1, 2D)``, cached."""
    from rtser import Recognizer
    from rtser.bundle import Bundle

    bundle = Bundle()
    digest = bundle.manifest["encoders"][WHISPER]["sha256"][:12]
    path = CACHE / "features" / f"music-{digest}-{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    rec, rng = Recognizer("any", bundle), np.random.default_rng(seed)
    rec.classifier.gate = None  # the stretches the VAD alone takes for speech, as on a rebuild
    out = {}
    for package, tracks in music_files().items():
        rows = []
        for track in tracks:
            x, rate = sf.read(track, dtype="float32", always_2d=True)
            for audio in _lines(resample(x.mean(1), rate, SAMPLE_RATE)).values():
                rows += _track_features(rec, audio, rng)
        out[package] = np.stack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **out)
    tmp.replace(path)
    return out


def speech_features(corpus: str, seed: int = data.SEED) -> tuple[np.ndarray, dict]:
    """A corpus's pooled Whisper features: what the gate learns from (every clip clean and
    through one training view drawn per clip), and each test view's."""
    rows = training_rows([corpus], seed)[0][WHISPER]
    return rows, {v: student_inputs(corpus, v)[WHISPER] for v in TEST_VIEWS}


def fit_gate(music: list[np.ndarray], speech: list[np.ndarray], seed: int = data.SEED):
    """The gate (classes: music, speech) on music rows and each corpus's speech rows: each corpus
    weighs the same within speech, and speech and music weigh alike."""
    from rtser.enroll import fit_head

    m = np.concatenate(music)
    x = np.concatenate([m, *speech])
    y = np.r_[np.zeros(len(m), int), np.ones(len(x) - len(m), int)]
    share = (len(x) - len(m)) / len(speech)
    weights = np.concatenate([np.ones(len(m))] + [np.full(len(r), share / len(r)) for r in speech])
    return fit_head({WHISPER: x}, y, 2, l2=L2, seed=seed, weights=weights)


def p_speech(gate, x: np.ndarray) -> np.ndarray:
    return gate.probs({WHISPER: x})[:, 1]


def leave_one_out(seed: int = data.SEED) -> dict:
    """Speech lost per held-out corpus and view, and unheard music caught per held-out package,
    at every threshold in ``THRESHOLDS``."""
    music = music_features(seed)
    corpora = data.corpora()
    speech = {c: speech_features(c, seed) for c in corpora}
    lost = {}
    for held in corpora:
        gate = fit_gate(
            list(music.values()),
            [speech[c][0] for c in corpora if c != held],
            seed,
        )
        for view in TEST_VIEWS:
            p = p_speech(gate, speech[held][1][view])
            lost[f"{held} {view}"] = [float(np.mean(p <= t)) for t in THRESHOLDS]
            print("lost", held, view, dict(zip(THRESHOLDS, lost[f"{held} {view}"])), flush=True)
    caught = {}
    for held in music:
        gate = fit_gate(
            [m for k, m in music.items() if k != held],
            [speech[c][0] for c in corpora],
            seed,
        )
        p = p_speech(gate, music[held])
        caught[held] = [float(np.mean(p <= t)) for t in THRESHOLDS]
        print("caught", held, dict(zip(THRESHOLDS, caught[held])), flush=True)
    worst = np.max(list(lost.values()), axis=0)
    ok = [i for i in range(len(THRESHOLDS)) if worst[i] <= MAX_LOST]
    best = ok[-1] if ok else 0
    return {
        "thresholds": THRESHOLDS.tolist(),
        "lost": lost,
        "caught": caught,
        "threshold": float(THRESHOLDS[best]),
    }


def fit_shipped(seed: int = data.SEED):
    """The gate on every corpus and every package of music."""
    music = music_features(seed)
    speech = [speech_features(c, seed)[0] for c in data.corpora()]
    return fit_gate(list(music.values()), speech, seed)
