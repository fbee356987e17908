"""`rtser enroll` on a real small subset: the overlay loads, predicts, and is refused when
tampered."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA

from rtser import Recognizer, RtserError
from rtser.audio import load
from rtser.bundle import Bundle
from rtser.enroll import (
    DEFAULT_L2,
    L2_GRID,
    PRIOR_WEIGHTS,
    emotion_map,
    fit_enrolled,
    fit_head,
    read_manifest,
)
from rtser.pipeline.heads import NumpyHead, Prior, softmax

LABELS = ("anger", "neutral", "sadness")


def rtser(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "rtser", *map(str, args)], capture_output=True, text=True, **kw
    )


def write_manifest(path, rows, header=("path", "label", "speaker")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def subset(data_dir):
    with open(DATA / "emovo" / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in LABELS]
    rng = np.random.default_rng(0)
    pick = [rows[i] for i in rng.permutation(len(rows))]
    chosen = [r for lab in LABELS for r in [p for p in pick if p["label"] == lab][:8]]
    return [(str(DATA / "emovo" / r["path"]), r["label"], r["speaker"]) for r in chosen]


@pytest.fixture(scope="module")
def overlay(subset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enroll")
    manifest = write_manifest(tmp / "clips.csv", subset)
    r = rtser(
        "enroll", "--lang", "xx", "--manifest", manifest, "--out", tmp / "overlay", timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert "speaker-independent CV" in r.stdout
    return tmp / "overlay"


def test_overlay_is_enrolled_on_the_shared_trunk(overlay):
    spec = json.loads((overlay / "manifest.json").read_text())["languages"]["xx"]
    assert spec["embedding"] == "shared trunk"
    head = NumpyHead.load(overlay / spec["head"])
    assert set(head.inputs) == set(Bundle().manifest["encoders"]) and "hidden/W" in head.params
    if spec["metrics"][
        "prior_weight"
    ]:  # every class here is an emotion of the bundle's emotion head
        assert spec["prior"]["classes"] == {c: c for c in LABELS} and head.prior is not None
    else:
        assert spec["prior"] is None and head.prior is None


def test_a_classifier_folds_onto_the_trunk():
    """``NumpyHead.on``: trunk then a standardised classifier == one head reading the encoders."""
    rng = np.random.default_rng(0)
    trunk = NumpyHead(
        {
            "w/mu": rng.normal(size=(3, 4)),
            "w/sd": rng.uniform(0.5, 2, (3, 4)),
            "w/layer_logits": rng.normal(size=3),
            "g/mu": rng.normal(size=5),
            "g/sd": rng.uniform(0.5, 2, 5),
            "hidden/W": rng.normal(size=(9, 6)),
            "hidden/b": rng.normal(size=6),
        },
        ["w", "g"],
    )
    pooled = {"w": rng.normal(size=(7, 3, 4)), "g": rng.normal(size=(7, 5))}
    y = np.arange(7) % 3
    classifier = fit_head({"shared": trunk.features(pooled)}, y, 3)
    np.testing.assert_allclose(
        trunk.with_classifier(classifier).probs(pooled),
        classifier.probs({"shared": trunk.features(pooled)}),
        atol=1e-9,
    )


def test_a_head_is_a_stable_function_of_its_features():
    """Features a thousandth apart (another CPU's int8 kernels give such) fit heads that agree:
    the fit converges rather than stopping wherever Adam's last steps happen to be (at a constant
    step: probabilities 0.08 apart)."""
    rng = np.random.default_rng(0)
    n, y = 600, rng.integers(4, size=600)
    centres, corpora = rng.normal(size=(4, 5, 128)), rng.normal(size=(3, 5, 128))
    corpus = rng.integers(3, size=n)

    def clips():  # layers of many dimensions; corpora further apart than classes
        return {
            "w": 0.1 * centres[y] + 0.5 * corpora[corpus] + rng.normal(size=(n, 5, 128)),
            "g": rng.normal(size=(n, 16)) + 0.2 * y[:, None],
        }

    pooled, test = clips(), clips()
    nudged = {k: x * (1 + 1e-3 * rng.standard_normal(x.shape)) for k, x in pooled.items()}
    a, b = fit_head(pooled, y, 4).probs(test), fit_head(nudged, y, 4).probs(test)
    assert np.abs(a - b).max() < 0.01


def test_the_weight_decay_is_the_one_speaker_cv_finds_best():
    """Speakers named: every grid value is cross-validated and the best is fitted; none named: the
    default, and no metrics."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = {"shared": rng.normal(size=(60, 8)) + y[:, None]}
    speakers = [f"s{i % 4}" for i in range(60)]
    head, m = fit_enrolled(x, y, speakers, 3)
    assert (
        set(m["ua_tried"]) == {f"l2 {v}, prior 0.0" for v in L2_GRID} and m["prior_weight"] is None
    )
    assert (
        m["l2"] in L2_GRID
        and m["ua_mean"] == max(m["ua_tried"].values()) == m["ua_tried"][f"l2 {m['l2']}, prior 0.0"]
    )
    np.testing.assert_array_equal(head.params["W"], fit_head(x, y, 3, l2=m["l2"]).params["W"])
    head, m = fit_enrolled(x, y, None, 3)
    assert m == {}
    np.testing.assert_array_equal(head.params["W"], fit_head(x, y, 3, l2=DEFAULT_L2).params["W"])


def test_a_prior_that_knows_the_classes_is_leaned_on():
    """Clips whose features say little, and a prior that knows their class: the CV finds that
    leaning on the prior classifies held-out speakers better, and picks a weight above 0."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = {"shared": rng.normal(size=(60, 8)) + 0.1 * y[:, None]}
    prior = 3.0 * np.eye(3)[y] + rng.normal(size=(60, 3))
    _, m = fit_enrolled(x, y, [f"s{i % 4}" for i in range(60)], 3, prior)
    assert set(m["ua_tried"]) == {f"l2 {a}, prior {b}" for a in L2_GRID for b in PRIOR_WEIGHTS}
    assert m["prior_weight"] > 0 and m["ua_mean"] > max(
        m["ua_tried"][f"l2 {a}, prior 0.0"] for a in L2_GRID
    )


def test_a_head_with_a_prior_adds_its_log_odds_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    pooled = {"w": rng.normal(size=(5, 3, 4)), "g": rng.normal(size=(5, 6))}
    y = np.arange(5) % 2
    leaned_on, head = fit_head(pooled, np.arange(5) % 4, 4), fit_head(pooled, y, 2)
    weights = 0.5 * np.array(
        [[1.0, 0], [0, 0], [0, 1], [0, 0]]
    )  # class 0 is its class 0, class 1 its class 2
    head.prior = Prior(leaned_on, weights)
    expected = softmax(
        np.log(fit_head(pooled, y, 2).probs(pooled))
        + 0.5 * np.log(4 * leaned_on.probs(pooled)[:, [0, 2]])
    )
    np.testing.assert_allclose(head.probs(pooled), expected, atol=1e-12)
    head.save(tmp_path / "h.npz")
    np.testing.assert_allclose(
        NumpyHead.load(tmp_path / "h.npz").probs(pooled), expected, atol=1e-12
    )


def test_emotions_are_found_by_name():
    emotions = ["anger", "boredom", "happiness", "sadness"]
    onehot = emotion_map(["Angry", "bored", "pride", "sad"], emotions)
    assert onehot.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    # one known emotion is nothing to lean on
    assert emotion_map(["anger", "pride", "shame"], emotions) is None


def test_the_bundle_ships_an_emotion_head_that_enrolment_leans_on():
    prior = Bundle().enrolment_prior()
    head = NumpyHead.load(prior.head)
    assert {"anger", "fear", "neutral", "surprise"} <= set(prior.labels)
    assert head.params["W"].shape[1] == len(prior.labels)
    assert set(head.inputs) <= set(Bundle().manifest["encoders"])


def test_overlay_loads_and_predicts(overlay, subset):
    rec = Recognizer("xx", bundle=overlay)
    assert rec.labels == sorted(LABELS)
    p = rec.predict(load(subset[0][0]))
    assert p.label in LABELS and abs(sum(p.probs.values()) - 1) < 1e-6
    assert {"de", "xx"} <= set(Bundle(overlay).languages)  # the shipped languages stay available
    r = rtser(
        "file",
        subset[0][0],
        "--lang",
        "xx",
        "--bundle",
        overlay,
        "--format",
        "jsonl",
        "--segments-only",
    )
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["lang"] == "xx"


def test_tampered_overlay_is_refused(overlay, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(overlay, bad)
    head = bad / "head-xx.npz"
    data = bytearray(head.read_bytes())
    data[-10] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(RtserError, match="sha256"):
        Recognizer("xx", bundle=bad)


@pytest.mark.parametrize(
    "rows,header,needle",
    [
        ([("a.wav", "anger")], ("path", "label"), "not found"),
        ([], ("path", "label"), "no clips"),
        ([("{clip}", "anger", "x")], ("path", "emotion", "speaker"), "unknown: emotion"),
        ([("{clip}", "anger"), ("{clip}", "anger")], ("path", "label"), "only one class"),
    ],
)
def test_bad_manifests_are_one_line_errors(tmp_path, subset, rows, header, needle):
    rows = [tuple(c.format(clip=subset[0][0]) for c in r) for r in rows]
    manifest = write_manifest(tmp_path / "m.csv", rows, header)
    with pytest.raises(RtserError, match=needle):
        read_manifest(manifest)
    r = rtser("enroll", "--lang", "xx", "--manifest", manifest)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


def test_few_clips_warn(tmp_path, subset):
    manifest = write_manifest(tmp_path / "m.csv", subset[:2] + subset[8:10])
    r = rtser("enroll", "--lang", "xx", "--manifest", manifest, "--out", tmp_path / "o")
    assert r.returncode == 0 and "has only 2 clip(s)" in r.stderr


def test_held_out_speaker_is_labelled_well_above_chance(data_dir, tmp_path):
    """Enrol from three EMOVO speakers, then label the fourth speaker's clips through Recognizer."""
    with open(DATA / "emovo" / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in LABELS]
    train = [
        (str(DATA / "emovo" / r["path"]), r["label"], r["speaker"])
        for lab in LABELS
        for r in [r for r in rows if r["label"] == lab and r["speaker"] != "m2"][::3]
    ]
    test = [r for r in rows if r["speaker"] == "m2"]
    from rtser.enroll import enroll

    enroll("xx", write_manifest(tmp_path / "m.csv", train), tmp_path / "o", warn=lambda s: None)
    rec = Recognizer("xx", bundle=tmp_path / "o")
    right = [rec.predict(load(DATA / "emovo" / r["path"])).label == r["label"] for r in test]
    assert np.mean(right) >= 0.6  # chance: 1/3


def test_no_possible_cv_is_said_and_the_manifest_stays_json(tmp_path, subset):
    # two speakers, one emotion each: holding either out leaves one class to train on
    rows = [(p, lab, f"speaker-{lab}") for p, lab, _ in subset if lab != "sadness"]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    r = rtser("enroll", "--lang", "xx", "--manifest", manifest, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert (
        "no speaker-independent estimate" in r.stderr and "nan" not in (r.stdout + r.stderr).lower()
    )
    assert "Warning" not in r.stderr  # no numpy RuntimeWarning spill

    def refuse(constant):
        raise ValueError(constant)

    m = json.loads((tmp_path / "o" / "manifest.json").read_text(), parse_constant=refuse)
    assert m["languages"]["xx"]["metrics"] == {}


def test_a_blank_speaker_cell_names_its_row(tmp_path, subset):
    rows = [list(r) for r in subset[:3] + subset[8:11]]
    rows[3][2] = ""
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with pytest.raises(RtserError, match=r"row\(s\) 5 have no speaker"):
        read_manifest(manifest)
