"""Add a language from a few labelled clips on a CPU: embed them with the bundle's encoders (and its
shared trunk, when it has one: a representation trained on every shipped language, which enrols
unseen languages better than the raw layer statistics, docs/results.md), fit a numpy head (layer
weights + linear classifier), write an overlay bundle that extends the base one. Classes named as
an emotion of the shipped corpora (anger, happiness, fear, ...) may leans_on on what the bundle's
emotion head (``Bundle.enrolment_prior``) hears, trained on many more speakers. How far, and the
classifier's weight decay, are what classifies the clips' speakers best when each is held out (when
the manifest names speakers).

The manifest is a CSV with columns ``path``, ``label`` and optionally ``speaker``; relative paths
are read from the CSV's folder.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .audio import load
from .bundle import FORMAT, Bundle, sha256
from .errors import RtserError
from .pipeline.features import ChunkEncoder, clip_features
from .pipeline.heads import NumpyHead, Prior, pool, prior_terms, softmax
from .pipeline.sessions import session
from .pipeline.vad import SILERO, Vad, VadConfig

COLUMNS = ("path", "label", "speaker")
MIN_PER_CLASS = 5
SEED = 12345
L2_GRID = (0.01, 0.1, 1.0)  # weight decays an enrolment chooses from by speaker-independent CV ...
DEFAULT_L2 = 0.1  # ... and the one it takes when the clips name no speakers to hold out
PRIOR_WEIGHTS = (0.0, 0.5, 1.0)  # how far classes leans_on on the bundle's emotion head (same CV)
EMOTION_NAMES = {  # what an enrolled class may be called, per emotion of the bundle's emotion head
    "anger": {"anger", "angry"},
    "boredom": {"boredom", "bored"},
    "calm": {"calm"},
    "disgust": {"disgust", "disgusted"},
    "fear": {"fear", "fearful", "afraid", "scared"},
    "happiness": {"happiness", "happy", "joy"},
    "neutral": {"neutral"},
    "sadness": {"sadness", "sad"},
    "surprise": {"surprise", "surprised"},
}


def read_manifest(path: str | Path) -> tuple[list[Path], list[str], list[str] | None]:
    path = Path(path)
    if not path.is_file():
        raise RtserError(f"{path}: no such manifest; give a CSV with columns path,label[,speaker]")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise RtserError(f"{path}: not a readable CSV ({e})") from None
    header = [h.strip() for h in table[0]] if table else []
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in ("path", "label") if c not in header]
    if unknown or missing:
        raise RtserError(
            f"{path}: columns must be path,label[,speaker]; "
            + (f"unknown: {', '.join(unknown)}" if unknown else f"missing: {', '.join(missing)}")
        )
    rows = [dict(zip(header, (cell.strip() for cell in r))) for r in table[1:]]
    if any(len(r) != len(header) for r in table[1:]):
        raise RtserError(f"{path}: some rows do not have {len(header)} fields")
    if not rows:
        raise RtserError(f"{path}: the manifest lists no clips")
    clips = [(path.parent / r["path"]).resolve() for r in rows]
    absent = [str(c) for c in clips if not c.is_file()]
    if absent:
        raise RtserError(f"{path}: {len(absent)} clip(s) not found, first: {absent[0]}")
    labels = [r["label"] for r in rows]
    if any(not lab for lab in labels):
        raise RtserError(f"{path}: every row needs a label (row {labels.index('') + 2} has none)")
    if len(set(labels)) < 2:
        raise RtserError(f"{path}: only one class ({labels[0]!r}); a classifier needs at least two")
    if "speaker" not in header:
        return clips, labels, None
    blank = [str(i + 2) for i, r in enumerate(rows) if not r["speaker"]]
    if blank:
        raise RtserError(
            f"{path}: row(s) {', '.join(blank[:10])}{' ...' if len(blank) > 10 else ''} have no "
            "speaker; fill them in, or drop the speaker column (no accuracy estimate then)"
        )
    return clips, labels, [r["speaker"] for r in rows]


def embed(
    clips: list[Path],
    encoder: ChunkEncoder,
    vad: Vad,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Per encoder: pooled features of each clip's speech span, as ``Recognizer.predict`` cuts it
    (the whole clip when the VAD finds no speech: the clip was labelled as speech)."""
    out: dict[str, list] = {}
    for path in clips:
        audio = load(path)
        for name, value in clip_features(encoder, audio, *vad.labelled_span(audio)).items():
            out.setdefault(name, []).append(pool(value))
        if progress:
            progress(1)
    return {k: np.stack(v) for k, v in out.items()}


def fit_head(
    pooled: dict[str, np.ndarray],
    y: np.ndarray,
    n_classes: int,
    steps: int = 300,
    lr: float = 0.05,
    l2: float = 1e-2,
    seed: int = SEED,
    targets: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> NumpyHead:
    """Class-weighted softmax regression on layer-weighted features, trained with Adam in numpy,
    its step annealed to 0 (a cosine). At a constant step the fit stops wherever Adam's last
    steps happen to land, so features a thousandth apart (another CPU's int8 kernels) gave heads
    that disagree on strangers; annealed, it converges (``tests/test_enroll.py``).

    ``y``: class indices; or ``targets``: ``(N, n_classes)`` probabilities to fit instead (soft
    labels, unweighted; ``y`` is then ignored). ``weights``: per-clip weights on top."""
    inputs = list(pooled)
    params = {}
    for n, x in pooled.items():
        params[f"{n}/mu"], params[f"{n}/sd"] = x.mean(0), np.maximum(x.std(0), 1e-4)
        if x.ndim == 3:
            params[f"{n}/layer_logits"] = np.zeros(x.shape[1])
    head = NumpyHead(params, inputs)
    z = {n: (x - params[f"{n}/mu"]) / params[f"{n}/sd"] for n, x in pooled.items()}
    width = sum(x.shape[-1] for x in z.values())
    rng = np.random.default_rng(seed)
    params["W"] = rng.normal(0, 0.01, (width, n_classes))
    params["b"] = np.zeros(n_classes)
    if targets is None:
        counts = np.bincount(y, minlength=n_classes)
        cw = (len(y) / np.maximum(counts, 1) / n_classes)[y]
        target = np.eye(n_classes)[y]
    else:
        cw, target = np.ones(len(targets)), targets
    if weights is not None:
        cw = cw * weights
    learn = ["W", "b"] + [f"{n}/layer_logits" for n in inputs if z[n].ndim == 3]
    m = {k: np.zeros_like(params[k]) for k in learn}
    v = {k: np.zeros_like(params[k]) for k in learn}
    for t in range(1, steps + 1):
        feats = head.combine(z)
        p = softmax(feats @ params["W"] + params["b"])
        g_logits = (p - target) * cw[:, None] / cw.sum()
        grads = {"W": feats.T @ g_logits + 2 * l2 * params["W"], "b": g_logits.sum(0)}
        g_feats, col = g_logits @ params["W"].T, 0
        for n in inputs:
            d = z[n].shape[-1]
            if z[n].ndim == 3:
                w = softmax(params[f"{n}/layer_logits"])
                g_w = np.einsum("nd,nld->l", g_feats[:, col : col + d], z[n])
                grads[f"{n}/layer_logits"] = w * (g_w - w @ g_w)
            col += d
        step = lr * 0.5 * (1 + np.cos(np.pi * (t - 1) / steps))
        for k in learn:  # Adam
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
            params[k] = params[k] - step * (m[k] / (1 - 0.9**t)) / (
                np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8
            )
    return head


def speaker_folds(
    speakers, max_loso: int = 10, n_groups: int = 5, seed: int = SEED
) -> list[np.ndarray]:
    """Test-speaker sets: leave-one-speaker-out with up to ``max_loso`` speakers, otherwise
    ``n_groups`` speaker groups of similar size (shuffled with ``seed``)."""
    unique = sorted(set(speakers))
    if len(unique) <= max_loso:
        return [np.array([s]) for s in unique]
    order = np.random.default_rng(seed).permutation(unique)
    return [np.array(sorted(g)) for g in np.array_split(order, n_groups)]


def out_of_fold(pooled, y, speakers, n_classes, l2: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each clip's log-probabilities from a head fitted without its ``speaker_folds`` fold (NaN in
    the folds that leave fewer than two classes to train on), and the masks of the folds tested."""
    speakers = np.asarray(speakers)
    log_p = np.full((len(y), n_classes), np.nan)
    tested = []
    for test_speakers in speaker_folds(speakers):
        test = np.isin(speakers, test_speakers)
        if test.all() or len(np.unique(y[~test])) < 2:
            continue
        head = fit_head({n: x[~test] for n, x in pooled.items()}, y[~test], n_classes, l2=l2)
        log_p[test] = head.log_probs({n: x[test] for n, x in pooled.items()})
        tested.append(test)
    return log_p, tested


def cv_metrics(y: np.ndarray, log_p: np.ndarray, tested: list[np.ndarray], n_classes: int) -> dict:
    """Speaker-independent UA/WA of out-of-fold log-probabilities (``out_of_fold``)."""
    pred, done = log_p.argmax(1), np.any(tested, axis=0)
    fold_ua = [
        float(np.mean([(pred[t][y[t] == c] == c).mean() for c in np.unique(y[t])])) for t in tested
    ]
    recalls = [
        (pred[done][y[done] == c] == c).mean() for c in range(n_classes) if (y[done] == c).any()
    ]
    return {
        "ua_mean": round(float(np.mean(recalls)), 4),
        "ua_std": round(float(np.std(fold_ua)), 4),
        "wa_mean": round(float((pred[done] == y[done]).mean()), 4),
        "folds": len(tested),
        "protocol": "speaker-independent (rtser enroll)",
    }


def fit_enrolled(
    pooled: dict[str, np.ndarray],
    y: np.ndarray,
    speakers,
    n_classes: int,
    prior: np.ndarray | None = None,
) -> tuple[NumpyHead, dict]:
    """The classifier ``rtser enroll`` fits on clips (``speakers``: one per clip, or None), and its
    speaker-independent metrics. ``prior``: ``(N, n_classes)`` terms added to the logits at some
    weight (``leaning``). Every ``L2_GRID`` weight decay and, with a prior, every ``PRIOR_WEIGHTS``
    weight is cross-validated over speakers, and the best pair (UA) is kept; the metrics are that
    pair's (so slightly optimistic; ``prior_weight`` None without a prior). ``{}``, ``DEFAULT_L2``
    and no prior when no speaker can be held out."""
    weights = PRIOR_WEIGHTS if prior is not None else (0.0,)
    tried = {}
    if speakers is not None and len(set(speakers)) >= 2:
        for l2 in L2_GRID:
            log_p, tested = out_of_fold(pooled, y, speakers, n_classes, l2)
            if tested:
                tried.update(
                    {
                        (l2, w): cv_metrics(y, log_p + w * prior if w else log_p, tested, n_classes)
                        for w in weights
                    }
                )
    if not tried:
        return fit_head(pooled, y, n_classes, l2=DEFAULT_L2), {}
    l2, w = max(tried, key=lambda k: tried[k]["ua_mean"])
    metrics = {
        **tried[(l2, w)],
        "l2": l2,
        "prior_weight": None if prior is None else w,
        "ua_tried": {f"l2 {a}, prior {b}": m["ua_mean"] for (a, b), m in tried.items()},
    }
    return fit_head(pooled, y, n_classes, l2=l2), metrics


def emotion_map(classes: list[str], emotions: list[str]) -> np.ndarray | None:
    """``(len(emotions), len(classes))``: 1 where an enrolled class is that emotion of the bundle's
    emotion head (by name, any case: ``EMOTION_NAMES``); None when fewer than two classes are."""
    onehot = np.array(
        [[float(c.strip().lower() in EMOTION_NAMES.get(e, {e})) for c in classes] for e in emotions]
    )
    return onehot if (onehot.sum(0) > 0).sum() >= 2 else None


class Leaning(NamedTuple):
    """What an enrolled language may leans_on on: the bundle's emotion head, ``emotion_map`` of the
    enrolled classes onto it, and its labels."""

    head: NumpyHead
    onehot: np.ndarray
    emotions: list[str]


def leaning(bundle: Bundle, classes: list[str], inputs) -> Leaning | None:
    """None without an emotion head reading ``inputs``, or when fewer than two classes are its
    emotions."""
    prior = bundle.enrolment_prior()
    if prior is None:
        return None
    head = NumpyHead.load(prior.head)
    onehot = emotion_map(classes, prior.labels)
    return (
        Leaning(head, onehot, prior.labels)
        if onehot is not None and set(head.inputs) <= set(inputs)
        else None
    )


def enroll(
    lang: str,
    manifest: str | Path,
    out: str | Path,
    base: str | Path | None = None,
    threads: int = 2,
    progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] = print,
) -> dict:
    """Write an overlay bundle for ``lang`` into ``out``; returns its manifest."""
    clips, labels, speakers = read_manifest(manifest)
    base_bundle = Bundle(base)
    if lang in base_bundle.languages:
        warn(f"note: {lang!r} is already in the base bundle; the overlay's head takes its place")
    classes = sorted(set(labels))
    for c, n in sorted(Counter(labels).items()):
        if n < MIN_PER_CLASS:
            warn(
                f"warning: class {c!r} has only {n} clip(s); results for it will be unreliable "
                "(aim for 20+)"
            )
    names = list(base_bundle.manifest["encoders"])
    encoders = ChunkEncoder({n: session(base_bundle.encoder(n), threads) for n in names})
    t0 = time.time()
    pooled = embed(clips, encoders, Vad(VadConfig(), base_bundle.vad_model(SILERO)), progress)
    leans_on = leaning(base_bundle, classes, pooled)
    prior = prior_terms(leans_on.head, pooled) @ leans_on.onehot if leans_on else None
    trunk_file = base_bundle.shared_trunk()
    trunk = NumpyHead.load(trunk_file) if trunk_file else None
    if trunk:
        pooled = {"shared": trunk.features(pooled)}
    y = np.array([classes.index(lab) for lab in labels])
    head, metrics = fit_enrolled(pooled, y, speakers, len(classes), prior)
    if speakers and len(set(speakers)) >= 2 and not metrics:
        warn(
            "note: no speaker-independent estimate of accuracy is possible: holding out any "
            "speaker leaves fewer than two classes to train on (record each speaker in several "
            "emotions)"
        )
    if trunk:
        head = trunk.with_classifier(head)
    prior_spec = None
    if leans_on and metrics.get("prior_weight"):
        head.prior = Prior(leans_on.head, metrics["prior_weight"] * leans_on.onehot)
        leaned = {classes[j]: leans_on.emotions[i] for i, j in zip(*np.nonzero(leans_on.onehot))}
        prior_spec = {"weight": metrics["prior_weight"], "classes": leaned}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    head_file = f"head-{lang}.npz"
    head.save(out / head_file)
    manifest_out = {
        "format": FORMAT,
        "name": f"rtser-enroll-{lang}",
        "created": time.strftime("%Y-%m-%d"),
        "extends": None if base is None else str(Path(base).resolve()),
        "window_s": base_bundle.manifest["window_s"],
        "hop_s": base_bundle.manifest["hop_s"],
        "encoders": {n: base_bundle.manifest["encoders"][n] for n in names},
        "languages": {
            lang: {
                "labels": classes,
                "head": head_file,
                "metrics": metrics,
                "embedding": "shared trunk" if trunk else "layer statistics",
                "prior": prior_spec,
                "training": {
                    "manifest": str(Path(manifest).resolve()),
                    "clips": len(clips),
                    "speakers": len(set(speakers)) if speakers else None,
                    "label_counts": dict(sorted(Counter(labels).items())),
                    "seconds": round(time.time() - t0, 1),
                },
            }
        },
        "files": {head_file: sha256(out / head_file)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest_out, indent=1, allow_nan=False) + "\n")
    return manifest_out
