"""The shipped bundle: verified by hash, refuses tampering, predicts every language, installs
and runs from a wheel without torch."""

import json
import os
import shutil
import subprocess
import sys
import venv

import numpy as np
import pytest
from conftest import DATA, ROOT

from rtser import Recognizer, RtserError
from rtser.audio import load
from rtser.bundle import DEFAULT, Bundle

FIRST_CLIP = {"de": "emodb", "it": "emovo", "en": "ravdess", "ur": "urdu", "es": "esuah"}


def first_clip(corpus):
    import csv

    with open(DATA / corpus / "manifest.csv") as f:
        return DATA / corpus / next(csv.DictReader(f))["path"]


@pytest.mark.parametrize("lang", sorted(FIRST_CLIP))
def test_every_language_labels_its_corpus_well_above_chance(data_dir, lang):
    """Sanity of the shipped heads on 6 clips per class of their corpus. The shipped heads were
    trained on every speaker, so this catches a broken head (shuffled labels, a wrong input), not
    held-out accuracy: that is train.distill's (README table), and test_enroll checks the runtime
    on a held-out speaker."""
    import csv

    with open(DATA / FIRST_CLIP[lang] / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    rec = Recognizer(lang)
    rng = np.random.default_rng(0)
    picked = [
        r
        for label in rec.labels
        for r in rng.permutation([r for r in rows if r["label"] == label])[:6]
    ]
    right = 0
    for r in picked:
        p = rec.predict(load(DATA / FIRST_CLIP[lang] / r["path"]))
        assert set(p.probs) == set(rec.labels) and abs(sum(p.probs.values()) - 1) < 1e-4
        assert 0 <= p.arousal <= 1
        right += p.label == r["label"]
    assert right / len(picked) >= min(0.9, 3 / len(rec.labels))


def test_the_any_head_labels_core_emotions_in_every_corpus(data_dir):
    """``--lang any``: the four core emotions, a numpy head on the same chunk features. Trained on
    every corpus, so again a sanity check (held-out corpora: train.core's README row)."""
    import csv

    rec = Recognizer("any")
    assert rec.labels == ["anger", "happiness", "neutral", "sadness"]
    rng, right, total = np.random.default_rng(0), 0, 0
    for corpus in sorted(set(FIRST_CLIP.values()) - {"esuah"}):
        with open(DATA / corpus / "manifest.csv") as f:
            rows = list(csv.DictReader(f))
        for label in rec.labels:
            for r in rng.permutation([r for r in rows if r["label"] == label])[:3]:
                p = rec.predict(load(DATA / corpus / r["path"]))
                right, total = right + (p.label == r["label"]), total + 1
    assert right / total >= 0.5


def test_predict_any_rate_and_layout(recognizer, utterances):
    from rtser.audio.resample import resample

    x = utterances[0]
    ref = recognizer.predict(x).label
    stereo = np.stack([resample(x, 16000, 44100)] * 2)  # (channels, frames) at 44.1 kHz
    assert recognizer.predict(stereo, 44100).label == ref
    assert recognizer.predict((x * 32767).astype(np.int16)).label == ref


@pytest.fixture
def bundle_copy(tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(DEFAULT, dst)
    return dst


def test_tampered_head_is_refused(bundle_copy):
    head = bundle_copy / "head-de.onnx"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(RtserError, match="sha256"):
        Bundle(bundle_copy)


def test_missing_file_and_wrong_format_are_refused(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / "manifest.json").write_text(json.dumps(dict(manifest, format=99)))
    with pytest.raises(RtserError, match="format 99"):
        Bundle(bundle_copy)
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    (bundle_copy / "ge2e.int8.onnx").unlink()
    with pytest.raises(RtserError, match="missing"):
        Bundle(bundle_copy)


def test_bundle_manifest_is_complete():
    m = Bundle().manifest
    keys = {"languages", "encoders", "files", "frontend", "window_s", "hop_s", "arousal", "speech"}
    assert keys <= set(m)
    assert {"de", "it", "en", "ur", "es", "any"} <= set(m["languages"])
    for spec in m["languages"].values():
        assert {"labels", "head", "training", "metrics", "calibration"} <= set(spec)
        assert 0 < spec["calibration"]["threshold"] < 1  # every head shows neutral by default
    assert sum((DEFAULT / f).stat().st_size for f in m["files"]) <= 40e6


def _edit(bundle_dir, change):
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda m: m.update(extends="."), "cycle"),
        (lambda m: m.pop("files"), "'files' is missing"),
        (lambda m: m.pop("languages"), "'languages' is missing"),
        (lambda m: m.update(window_s="3"), "'window_s' has the wrong type"),
        (lambda m: m["languages"]["de"].pop("head"), "needs 'labels' and 'head'"),
        (lambda m: m.update(extends=7), "'extends' must be"),
        (lambda m: m["prior"].pop("labels"), "'prior' needs 'head' and 'labels'"),
        (lambda m: m["speech"].update(threshold=2), "'speech' needs a 'head' and a 'threshold'"),
    ],
)
def test_broken_manifests_are_one_line_errors(bundle_copy, change, needle):
    _edit(bundle_copy, change)
    with pytest.raises(RtserError, match=needle):
        Bundle(bundle_copy)
    r = subprocess.run(
        [sys.executable, "-m", "rtser", "info", "--bundle", bundle_copy],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


def test_an_extends_cycle_through_two_overlays_is_refused(bundle_copy, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(bundle_copy, other)
    _edit(bundle_copy, lambda m: m.update(extends=str(other)))
    _edit(other, lambda m: m.update(extends=str(bundle_copy)))
    with pytest.raises(RtserError, match="cycle"):
        Bundle(bundle_copy)


def test_readme_accuracy_table_is_the_manifests():
    export_bundle = pytest.importorskip("export.bundle")
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- accuracy:start -->\n")[1].split("\n<!-- accuracy:end -->")[0]
    assert table == export_bundle.accuracy_table(Bundle().manifest)


def test_encoder_sizes_in_the_docs_are_the_files():
    import re

    doc = (ROOT / "docs" / "encoders.md").read_text()
    for name in ("whisper-base-l4.int8.onnx", "ge2e.int8.onnx"):
        stated = float(re.search(rf"`{re.escape(name)}`, ([\d.]+) MB", doc).group(1))
        assert stated == round((DEFAULT / name).stat().st_size / 1e6, 1)


@pytest.mark.skipif(os.environ.get("RTSER_SKIP_WHEEL") == "1", reason="RTSER_SKIP_WHEEL=1")
def test_wheel_installs_and_predicts_without_torch(tmp_path, data_dir):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT],
        check=True,
        capture_output=True,
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "-q", *wheels.glob("rtser-*.whl")],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys, rtser, soundfile as sf; x, sr = sf.read(sys.argv[1], dtype='float32'); p = "
        "rtser.Recognizer('de').predict(x, sr); assert 'torch' not in sys.modules and "
        "'transformers' not in sys.modules; print(p.label)"
    )
    r = subprocess.run(
        [py, "-c", code, first_clip("emodb")], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in Recognizer("de").labels
    r = subprocess.run(
        [env_dir / "bin" / "rtser", "file", first_clip("emodb"), "--lang", "de"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and " turn " in r.stdout, r.stderr
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0


def test_languages_share_the_encoders_and_the_vad():
    """A server labelling calls in several languages holds one copy of each encoder and the VAD."""
    de, it = Recognizer("de"), Recognizer("it")
    assert de.classifier.encoder.sessions.keys() == it.classifier.encoder.sessions.keys()
    for name, session in de.classifier.encoder.sessions.items():
        assert it.classifier.encoder.sessions[name] is session
    assert de.vad.session is it.vad.session
