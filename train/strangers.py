"""What a head does on voices it never heard, and what makes it trustworthy there.

- Labels across corpora: a corpus's clips count for a head only under labels the head has
  (``emospeech``'s ``calm`` is calm, not neutral; ``baved``'s arousal levels are no category).
- ``arousal_target``: the arousal a clip's label implies (``AROUSAL``), RAVDESS's intensity and
  ``baved``'s levels; what the arousal head learns and is measured against.
- ``fit_calibration``: a per-class bias and a temperature that make a head's probabilities mean
  what they say on corpora it never heard, and the threshold a label other than neutral needs
  there (``rtser.pipeline.calibration``).
- ``site_reference``: what the calibrated head hears on average from strangers' mostly neutral
  speech, the point a site's running baseline is held to (``rtser.pipeline.site``).
- ``metrics``: 4-core UA, calm/neutral labelled negative, anger recall and precision, ECE with its
  reliability bins, and the most frequent label's share.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from rtser.pipeline.calibration import Calibration

from . import data

CORE = ("anger", "happiness", "neutral", "sadness")
NEGATIVE = ("anger", "disgust", "fear", "sadness")
CALM = ("neutral", "calm")  # speech that must not raise an alarm
TARGET_ALARM = 0.10  # the threshold's goal on the corpora it is fitted on (the product's: 0.15)
# A site's calls are mostly calm or neutral speech: the share its baseline's reference assumes
# (``site_reference``; bench/strangers.py measures sites that hold more and less of it).
SITE_NEUTRAL = 0.6
BINS = 10  # of the reliability diagram and the ECE
# Arousal each category implies on a 0 (tired, calm) .. 1 (agitated) scale: the circumplex order
# (Russell 1980) in round numbers; RAVDESS's strong intensity and baved's levels refine it.
AROUSAL = {
    "anger": 0.85,
    "fear": 0.8,
    "surprise": 0.8,
    "happiness": 0.7,
    "disgust": 0.55,
    "neutral": 0.35,
    "sadness": 0.25,
    "boredom": 0.2,
    "calm": 0.2,
    "arousal_low": 0.2,
    "arousal_normal": 0.4,
    "arousal_high": 0.85,
}
STRONG = 0.1  # RAVDESS's strong intensity over its normal one
OWN = {"de": "emodb", "it": "emovo", "en": "ravdess", "ur": "urdu", "es": "esuah"}  # heads' corpora
WHISPER, VOICE = "whisper-base-l4.int8@chunks", "ge2e.int8@chunks"  # the students' cache variants


def categorical() -> list[str]:
    """The corpora with emotion categories (baved's labels are arousal levels)."""
    return [c for c in data.corpora() if c != "baved"]


def arousal_target(clip: data.Clip) -> float:
    """The arousal ``clip``'s label implies, raised for RAVDESS's strong intensity (its file
    names' fourth field: 01 normal, 02 strong)."""
    value = AROUSAL[clip.label]
    if clip.corpus == "ravdess" and clip.path.stem.split("-")[3] == "02":
        value += STRONG
    return min(value, 1.0)


def head_labels_of(clips: list[data.Clip], labels: list[str]) -> np.ndarray:
    """Each clip's label as an index into a head's ``labels``; -1 where the head has no such
    label (its clips still count for the alarm rate when they are calm or neutral)."""
    return np.array([labels.index(c.label) if c.label in labels else -1 for c in clips])


def calibrated_log_probs(log_p: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
    z = (log_p + bias) / temperature
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def fit_bias_temperature(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """The bias and temperature that minimise the class-balanced negative log-likelihood of
    ``parts`` (``(log_p (N, C), y (N,))`` per corpus, y -1 where unlabelled), each corpus
    weighing the same: an offset and a spread that hold across strangers. A class no part labels
    keeps the mean bias (nothing says where it should move; driving it down would silence it)."""
    n_classes = parts[0][0].shape[1]
    present = np.unique(np.concatenate([y[y >= 0] for _, y in parts]))
    rows = []
    for log_p, y in parts:
        keep = y >= 0
        if not keep.any():
            continue
        counts = np.bincount(y[keep], minlength=n_classes)
        w = 1 / counts[y[keep]] / np.count_nonzero(counts)  # each class, then each corpus, alike
        rows.append((log_p[keep], y[keep], w))

    def unpack(theta):
        bias = np.zeros(n_classes)
        bias[present] = theta[:-1] - theta[:-1].mean()
        return bias, np.exp(theta[-1])

    def loss(theta):
        bias, temperature = unpack(theta)
        return sum(
            -(w * calibrated_log_probs(lp, bias, temperature)[np.arange(len(y)), y]).sum()
            for lp, y, w in rows
        ) / len(rows)

    res = minimize(loss, np.zeros(len(present) + 1), method="L-BFGS-B")
    bias, temperature = unpack(res.x)
    return bias, float(temperature)


def alarm_rate(pred: list[str], clips: list[data.Clip]) -> float | None:
    """How often calm or neutral speech is labelled negative (None without such clips)."""
    calm = [p for p, c in zip(pred, clips) if c.label in CALM]
    return float(np.mean([p in NEGATIVE for p in calm])) if calm else None


def mostly_neutral_mean(
    log_p: np.ndarray, clips: list[data.Clip], share: float = SITE_NEUTRAL
) -> np.ndarray | None:
    """The mean of ``log_p``'s rows over speech that is ``share`` calm or neutral and the rest
    the corpus's other clips (None when the corpus lacks either)."""
    calm = np.array([c.label in CALM for c in clips])
    if calm.all() or not calm.any():
        return None
    return share * log_p[calm].mean(0) + (1 - share) * log_p[~calm].mean(0)


def site_reference(parts: list[tuple[np.ndarray, list[data.Clip]]], cal: Calibration) -> np.ndarray:
    """The calibrated head's mean log-probabilities on strangers' mostly neutral speech
    (``mostly_neutral_mean`` of each corpus of ``parts``, then their mean): where a site's
    baseline belongs when the head reads that site as it reads strangers."""
    means = [mostly_neutral_mean(np.log(cal.probs(np.exp(lp))), clips) for lp, clips in parts]
    reference = np.mean([m for m in means if m is not None], axis=0)
    return reference - reference.mean()


def fit_calibration(
    parts: list[tuple[np.ndarray, list[data.Clip]]], labels: list[str], target: float = TARGET_ALARM
) -> dict:
    """``Calibration``'s spec for a head from its log-probabilities on corpora it never heard
    (``(log_p, clips)`` per corpus): bias and temperature (``fit_bias_temperature``), then the
    lowest threshold that keeps the median alarm rate over those corpora within ``target`` (the
    median: one corpus the head cannot read must not silence it on the others), and the site
    baseline's ``reference`` (``site_reference``)."""
    bias, temperature = fit_bias_temperature(
        [(lp, head_labels_of(clips, labels)) for lp, clips in parts]
    )
    spec = {"bias": bias.round(4).tolist(), "temperature": round(temperature, 4), "threshold": 0.0}
    spec["reference"] = site_reference(parts, Calibration.from_spec(spec, labels)).round(4).tolist()
    if "neutral" not in labels:
        return spec
    calibrated = [
        (np.exp(calibrated_log_probs(lp, bias, temperature)), clips) for lp, clips in parts
    ]
    for threshold in np.arange(0.0, 1.0, 0.01):
        cal = Calibration.from_spec({**spec, "threshold": threshold}, labels)
        rates = [alarm_rate([cal.label(p) for p in probs], clips) for probs, clips in calibrated]
        rates = [r for r in rates if r is not None]
        if not rates or np.median(rates) <= target:
            return {**spec, "threshold": round(float(threshold), 2)}
    return {**spec, "threshold": 1.0}


def metrics(probs: np.ndarray, clips: list[data.Clip], cal: Calibration) -> dict:
    """The strangers issue's measures of calibrated ``probs`` (N, classes) of a head:

    - ``ua4``: UA of the argmax over the core emotions the head has, on clips of those;
    - of the shown labels (``cal.label``): ``alarm`` (calm/neutral clips labelled negative),
      ``anger_recall`` and ``anger_precision``, and the most frequent label's share among the
      core-emotion clips (``top_share``: 1.0 is one answer for everyone);
    - ``ece`` and ``reliability`` (bin, clips, mean confidence, accuracy): how far the most
      probable label's probability is from how often it is right, on clips of the head's labels.
    """
    labels = list(cal.labels)
    shown = np.array([cal.label(p) for p in probs])
    truth = np.array([c.label for c in clips])
    core = [labels.index(c) for c in CORE if c in labels]
    core_rows = np.isin(truth, [labels[i] for i in core])
    core_pred = np.array([labels[core[i]] for i in probs[:, core].argmax(1)])
    recalls = [
        float(np.mean(core_pred[core_rows & (truth == c)] == c))
        for c in CORE
        if (core_rows & (truth == c)).any()
    ]
    known = np.isin(truth, labels)
    conf, right = probs.max(1), np.array(labels)[probs.argmax(1)] == truth
    bins = []
    for b in range(BINS):
        m = known & (conf > b / BINS) & (conf <= (b + 1) / BINS)
        if m.any():
            bins.append((b, int(m.sum()), float(conf[m].mean()), float(right[m].mean())))
    ece = sum(n * abs(c - a) for _, n, c, a in bins) / max(known.sum(), 1)
    said_anger, angry = shown == "anger", truth == "anger"
    core_shown = list(shown[core_rows])
    shares = {s: core_shown.count(s) / len(core_shown) for s in sorted(set(core_shown))}
    return {
        "clips": len(clips),
        "ua4": float(np.mean(recalls)) if recalls else None,
        "alarm": alarm_rate(list(shown), clips),
        "anger_recall": float(np.mean(said_anger[angry])) if angry.any() else None,
        "anger_precision": float(np.mean(angry[said_anger])) if said_anger.any() else None,
        "ece": float(ece) if known.any() else None,
        "reliability": bins,
        "top_share": max(shares.values()) if shares else None,
        "top_label": max(shares, key=shares.get) if shares else None,
    }


# --- the recipes: heads for strangers, fitted on whole corpora (numpy; see bench/strangers.py) ---

HEAD_L2 = 0.1  # the any and arousal heads' weight decay (the any head's, by LOCO: train.core)


def inputs(corpus: str, view: str | None = None) -> dict[str, np.ndarray]:
    """The shipped encoders' pooled features of a corpus's clips, by bundle input name."""
    from .distill import student_inputs

    return student_inputs(corpus, view or "clean")


def training_rows(corpora: list[str], seed: int) -> tuple[dict[str, np.ndarray], list[data.Clip]]:
    """Every clip of ``corpora`` clean and once through a training view drawn per clip (phone,
    noisy room or digital line, ``train.augment``): what the numpy heads for strangers learn
    from, twice the clips rather than four times, so a leave-one-corpus-out run stays minutes."""
    from .distill import TRAIN_VIEWS

    rng = np.random.default_rng(seed)
    parts, clips = [], []
    for corpus in corpora:
        items = data.clips(corpus)
        clean = inputs(corpus)
        views = {v: inputs(corpus, v) for v in TRAIN_VIEWS}
        pick = rng.integers(len(TRAIN_VIEWS), size=len(items))
        viewed = {
            n: np.stack([views[TRAIN_VIEWS[k]][n][i] for i, k in enumerate(pick)]) for n in clean
        }
        parts += [clean, viewed]
        clips += items + items
    return {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}, clips


def corpus_weights(clips: list[data.Clip]) -> np.ndarray:
    """Per clip, so that every corpus weighs the same: strangers are not RAVDESS's actors."""
    names = np.array([c.corpus for c in clips])
    counts = {n: np.sum(names == n) for n in set(names)}
    return np.array([len(clips) / len(counts) / counts[n] for n in names])


def fit_core(
    corpora: list[str], seed: int = data.SEED, unheard: frozenset = frozenset(), nudge: float = 0.0
):
    """The ``any`` head: the four core emotions, on every clip of them in ``corpora``, each
    corpus weighing the same (``rtser enroll``'s numpy head); ``unheard``: speakers
    (``Clip.speaker``) left out (speaker-independent folds); ``nudge``: each feature scaled by
    1 + ``nudge`` × a normal draw (how much a head moves with its features' last digits)."""
    from rtser.enroll import fit_head

    feats, clips = training_rows(corpora, seed)
    if nudge:
        rng = np.random.default_rng(seed)
        feats = {n: x * (1 + nudge * rng.standard_normal(x.shape)) for n, x in feats.items()}
    keep = np.array([c.label in CORE and c.speaker not in unheard for c in clips])
    y = np.array([CORE.index(c.label) for c, k in zip(clips, keep) if k])
    rows = {n: x[keep] for n, x in feats.items()}
    kept = [c for c, k in zip(clips, keep) if k]
    return fit_head(rows, y, len(CORE), l2=HEAD_L2, seed=seed, weights=corpus_weights(kept))


def fit_arousal(corpora: list[str], seed: int = data.SEED):
    """The arousal head: a two-class (low, high) numpy head fitted to ``arousal_target`` as the
    probability of high, on every clip of ``corpora``; its ``probs[:, 1]`` is the arousal."""
    from rtser.enroll import fit_head

    feats, clips = training_rows(corpora, seed)
    target = np.array([arousal_target(c) for c in clips])
    soft = np.stack([1 - target, target], axis=1)
    return fit_head(
        feats, None, 2, l2=HEAD_L2, seed=seed, targets=soft, weights=corpus_weights(clips)
    )


def language_log_probs(clf, corpus: str, view: str) -> np.ndarray:
    """A bundle head's (``rtser.pipeline.classifier.Classifier``) raw log-probabilities on a
    corpus's cached chunk features (what ``Recognizer.predict`` computes, before the
    calibration)."""
    from .features import load_features, viewed

    whisper = load_features(viewed(WHISPER, view), corpus, seq=True)["seq"]
    voice = load_features(viewed(VOICE, view), corpus)["embedding"]
    out = []
    for seq, emb in zip(whisper, voice):
        feeds = {"whisper-base": seq.transpose(1, 0, 2).astype(np.float32), "ge2e": emb}
        out.append(clf.head.run(None, {n: feeds[n] for n in clf.inputs})[0])
    return np.log(np.maximum(np.array(out, np.float64), 1e-12))
