"""`rtser enroll` on a real small subset: the overlay loads, predicts, and is refused when tampered."""
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
from rtser.enroll import read_manifest

LABELS = ("anger", "neutral", "sadness")


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
    r = subprocess.run([sys.executable, "-m", "rtser", "enroll", "--lang", "xx", "--manifest", manifest,
                        "--out", tmp / "overlay"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "speaker-independent CV" in r.stdout
    return tmp / "overlay"


def test_overlay_loads_and_predicts(overlay, subset):
    rec = Recognizer("xx", bundle=overlay)
    assert rec.labels == sorted(LABELS)
    p = rec.predict(load(subset[0][0]))
    assert p.label in LABELS and abs(sum(p.probs.values()) - 1) < 1e-6
    assert {"de", "xx"} <= set(Bundle(overlay).languages)  # the shipped languages stay available
    r = subprocess.run([sys.executable, "-m", "rtser", "file", subset[0][0], "--lang", "xx", "--bundle", overlay,
                        "--format", "jsonl", "--segments-only"], capture_output=True, text=True)
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


@pytest.mark.parametrize("rows,header,needle", [
    ([("a.wav", "anger")], ("path", "label"), "not found"),
    ([], ("path", "label"), "no clips"),
    ([("{clip}", "anger", "x")], ("path", "emotion", "speaker"), "unknown: emotion"),
    ([("{clip}", "anger"), ("{clip}", "anger")], ("path", "label"), "only one class"),
])
def test_bad_manifests_are_one_line_errors(tmp_path, subset, rows, header, needle):
    rows = [tuple(c.format(clip=subset[0][0]) for c in r) for r in rows]
    manifest = write_manifest(tmp_path / "m.csv", rows, header)
    with pytest.raises(RtserError, match=needle):
        read_manifest(manifest)
    r = subprocess.run([sys.executable, "-m", "rtser", "enroll", "--lang", "xx", "--manifest", manifest],
                       capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


def test_few_clips_warn(tmp_path, subset):
    manifest = write_manifest(tmp_path / "m.csv", subset[:2] + subset[8:10])
    r = subprocess.run([sys.executable, "-m", "rtser", "enroll", "--lang", "xx", "--manifest", manifest,
                        "--out", tmp_path / "o"], capture_output=True, text=True)
    assert r.returncode == 0 and "has only 2 clip(s)" in r.stderr
