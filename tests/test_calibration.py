"""Probabilities that mean what they say, and neutral unless another label has the evidence:
the calibration's rule on scripted probabilities, and its fit on a held-out fold."""

import numpy as np
import pytest

from rtser import RtserError
from rtser.pipeline.calibration import Calibration
from rtser.pipeline.smoothing import LabelSmoother

LABELS = ["anger", "happiness", "neutral", "sadness"]


def cal(threshold=0.6, bias=(0, 0, 0, 0), temperature=1.0):
    spec = {"bias": list(bias), "temperature": temperature, "threshold": threshold}
    return Calibration.from_spec(spec, LABELS)


@pytest.mark.parametrize(
    "probs, shown",
    [
        ([0.7, 0.1, 0.1, 0.1], "anger"),  # clears the threshold
        ([0.5, 0.1, 0.3, 0.1], "neutral"),  # most probable, but not enough evidence
        ([0.1, 0.1, 0.3, 0.5], "neutral"),
        ([0.2, 0.2, 0.4, 0.2], "neutral"),  # neutral needs no evidence
        ([0.0, 0.6, 0.4, 0.0], "happiness"),  # at the threshold is enough
    ],
)
def test_a_label_other_than_neutral_needs_the_threshold(probs, shown):
    assert cal().label(np.array(probs)) == shown


def test_without_a_neutral_label_or_a_calibration_the_top_label_is_shown():
    assert Calibration.from_spec(None, LABELS).label(np.array([0.4, 0.3, 0.2, 0.1])) == "anger"
    no_neutral = Calibration.from_spec({"threshold": 0.9}, ["anger", "calm"])
    assert no_neutral.label(np.array([0.6, 0.4])) == "anger"


def test_bias_and_temperature_reshape_the_probabilities_and_keep_their_sum():
    raw = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    out = cal(bias=(-1.0, 0, 0.5, 0), temperature=2.0).probs(raw)
    assert np.allclose(out.sum(1), 1)
    expected = np.exp((np.log(raw) + [-1.0, 0, 0.5, 0]) / 2)
    assert np.allclose(out, expected / expected.sum(1, keepdims=True))


def test_a_broken_calibration_is_one_clear_error():
    with pytest.raises(RtserError, match="one bias per label"):
        Calibration.from_spec({"bias": [0.0, 1.0]}, LABELS)
    with pytest.raises(RtserError, match="temperature > 0"):
        Calibration.from_spec({"temperature": 0}, LABELS)


def test_the_rolling_label_falls_back_to_neutral_when_its_evidence_fades():
    smoother = LabelSmoother(cal(threshold=0.6), alpha=1.0, margin=0.15)
    assert smoother.update(np.array([0.8, 0.0, 0.2, 0.0]))[0] == "anger"
    assert smoother.update(np.array([0.7, 0.0, 0.3, 0.0]))[0] == "anger"  # still clears it
    # anger leads by less than the margin, but fell below the threshold: neutral again
    assert smoother.update(np.array([0.5, 0.0, 0.4, 0.1]))[0] == "neutral"


def held_out_fold(rng, n, offset, overconfidence):
    """Clips of four classes as a head trained elsewhere sees them: its log-probabilities lean
    towards class 0 by ``offset`` and are ``overconfidence`` times too sharp."""
    y = rng.integers(4, size=n)
    evidence = rng.normal(0, 1.0, (n, 4))
    evidence[np.arange(n), y] += 1.5
    logits = overconfidence * (evidence + [offset, 0, 0, 0])
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True), y


def ece(probs, y, bins=10):
    conf, right = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    return sum(
        abs(conf[m].mean() - right[m].mean()) * m.mean()
        for a, b in zip(edges, edges[1:])
        if (m := (conf > a) & (conf <= b)).any()
    )


def test_calibration_fitted_on_some_folds_holds_on_a_fold_it_never_saw():
    pytest.importorskip("scipy")  # training code's (the export extras)
    from train.strangers import fit_bias_temperature

    rng = np.random.default_rng(0)
    seen = [held_out_fold(rng, 400, offset=1.0, overconfidence=3.0) for _ in range(3)]
    log_p, y = held_out_fold(rng, 400, offset=1.0, overconfidence=3.0)
    bias, temperature = fit_bias_temperature(seen)
    c = Calibration.from_spec({"bias": bias.tolist(), "temperature": temperature}, LABELS)
    raw, calibrated = np.exp(log_p), c.probs(np.exp(log_p))
    assert temperature > 2 and bias[0] < min(bias[1:])  # found the spread and the lean
    assert ece(calibrated, y) < 0.05 < ece(raw, y)
    recall = [np.mean(calibrated.argmax(1)[y == k] == k) for k in range(4)]
    assert min(recall) > 0.5  # the lean towards class 0 no longer swallows the others
