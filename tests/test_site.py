"""The site's running baseline: its arithmetic and its file on scripted probabilities, and a real
stream that learns from its turns when it closes and equals predict under the same baseline."""

import json

import numpy as np
import pytest
from conftest import EMODB, clip

from rtser import Recognizer, RtserError
from rtser.audio import load
from rtser.pipeline.calibration import Calibration
from rtser.pipeline.site import PRIOR_TURNS, Site

LABELS = ["anger", "happiness", "neutral", "sadness"]
REFERENCE = [0.0, 0.0, 0.5, -0.5]  # strangers' mostly neutral speech: neutral leads


def cal(reference=REFERENCE, threshold=0.6):
    spec = {"bias": [0, 0, 0, 0], "threshold": threshold, "reference": reference}
    return Calibration.from_spec(spec, LABELS)


def leaning(n, towards=3, lean=1.5, reference=REFERENCE):
    """``n`` turns of calm speech as a head that leans towards ``towards`` hears them."""
    z = np.tile(np.array(reference, np.float64), (n, 1))
    z[:, towards] += lean
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def test_the_offset_is_the_sites_lean_trusted_by_how_much_it_heard():
    baseline = Site().baseline("xx", cal())
    assert np.all(baseline.offset() == 0)  # a new site: nothing taken out
    baseline.add(leaning(PRIOR_TURNS))
    lean = np.array([0.0, 0.0, 0.0, 1.5]) - 1.5 / 4  # centred: only differences matter
    assert np.allclose(baseline.offset(), lean / 2)  # n turns: n / (n + PRIOR_TURNS)
    baseline.add(leaning(1000 * PRIOR_TURNS))
    assert np.allclose(baseline.offset(), lean, atol=0.01)


def test_a_calm_caller_at_a_sad_sounding_site_is_shown_neutral_once_the_site_has_spoken():
    calibration, baseline = cal(), Site().baseline("xx", cal())
    turn = np.exp(leaning(1, lean=2.5)[0])  # sadness 0.67: over the threshold
    assert calibration.label(turn) == "sadness"
    baseline.add(leaning(200, lean=2.5))
    shifted = calibration.shifted(baseline.offset())
    probs = shifted.probs(turn)
    assert shifted.label(probs) == "neutral" and np.isclose(probs.sum(), 1)
    # a turn that is sadder than the site's usual still reads as sadness
    assert shifted.label(shifted.probs(np.exp(leaning(1, lean=6.0)[0]))) == "sadness"


def test_the_baseline_is_kept_in_its_file_and_restarts_when_the_head_changes(tmp_path):
    path = tmp_path / "site.json"
    first = Site(path).baseline("xx", cal())
    first.add(leaning(25))
    assert json.loads(path.read_text())["xx"]["turns"] == 25
    again = Site(path).baseline("xx", cal())
    assert again.turns == 25 and np.allclose(again.offset(), first.offset())
    changed = Site(path).baseline("xx", cal(reference=[0.1, 0.0, 0.4, -0.5]))
    assert changed.turns == 0  # another bundle: its offsets are not this one's
    assert Site().baseline("xx", Calibration.from_spec(None, LABELS)) is None  # nothing to hold to


def test_a_bad_site_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "site.json"
    bad.write_text("[1, 2]")
    with pytest.raises(RtserError, match="not a site baseline"):
        Site(bad)
    with pytest.raises(RtserError, match="cannot write the site baseline"):
        Site(tmp_path / "missing" / "site.json")


@pytest.mark.slow
def test_a_stream_teaches_the_site_its_turns_and_equals_predict_under_it(data_dir):
    site = Site()
    rec = Recognizer("de", site=site)
    assert rec.baseline is not None and rec.baseline.turns == 0
    x = load(clip("emodb", EMODB[0]))
    session = rec.stream()
    turns = [e for e in session.push(x) + session.close() if e.type == "turn"]
    assert rec.baseline.turns == len(turns) == 1  # learnt when the stream closed
    sadness, reference = rec.labels.index("sadness"), rec.classifier.calibration.reference
    rec.baseline.add(leaning(200, sadness, reference=reference))
    predicted = rec.predict(x)
    session = rec.stream()
    turn = [e for e in session.push(x) + session.close() if e.type == "turn"][0]
    assert turn.label == predicted.label
    assert all(abs(turn.probs[k] - p) < 1e-4 for k, p in predicted.probs.items())
    plain = Recognizer("de").predict(x)
    assert predicted.probs["sadness"] < plain.probs["sadness"]  # the site's lean is taken out
