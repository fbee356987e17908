"""The rtser command as users run it: formats, errors (exit 2, one line), info, plot, listen."""
import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import EMODB, build_call, clip


def rtser(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rtser", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def call(utterances, tmp_path_factory):
    audio, _ = build_call(utterances[:3])
    path = tmp_path_factory.mktemp("call") / "call.wav"
    sf.write(path, np.stack([audio, np.zeros_like(audio)], axis=1), 16000)  # stereo, speech on the left
    return path


def test_table_default(call):
    r = rtser("file", call, "--lang", "de")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["start", "end", "ch", "type"]
    assert sum(" segment " in line for line in lines) == 3


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_machine_formats(call, fmt):
    r = rtser("file", call, "--lang", "de", "--format", fmt, "--segments-only")
    assert r.returncode == 0, r.stderr
    if fmt == "jsonl":
        rows = [json.loads(line) for line in r.stdout.splitlines()]
    elif fmt == "json":
        rows = json.loads(r.stdout)
    else:
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 3 and all(row["type"] == "segment" for row in rows)
    if fmt != "csv":
        assert set(rows[0]) == {"type", "channel", "start", "end", "lang", "label", "probs", "seq"}


def test_split_channels(call):
    r = rtser("file", call, "--lang", "de", "--channels", "split", "--format", "jsonl", "--segments-only")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3 and {row["channel"] for row in rows} == {0}


def test_plot(call, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "timeline.png"
    r = rtser("file", call, "--lang", "de", "--channels", "split", "--plot", png, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_silence_only_gives_no_events(tmp_path, data_dir):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000 * 3, np.float32), 16000)
    r = rtser("file", path, "--lang", "de", "--format", "jsonl")
    assert r.returncode == 0 and r.stdout == ""


def _nan_wav(p):
    sf.write(p, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")


@pytest.mark.parametrize("setup,args,needle", [
    (None, ["file", "missing.wav", "--lang", "de"], "no such file"),
    (lambda p: p.write_bytes(b""), ["file", "{p}", "--lang", "de"], "not a readable audio file"),
    (lambda p: p.write_text("hello"), ["file", "{p}", "--lang", "de"], "not a readable audio file"),
    (_nan_wav, ["file", "{p}", "--lang", "de"], "NaN"),
    (None, ["file", "{clip}"], "choose one with --lang"),
    (None, ["file", "{clip}", "--lang", "xx"], "available: de"),
    (None, ["file", "{clip}", "--lang", "de", "--bundle", "{tmp}"], "manifest.json missing"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, data_dir, setup, args, needle):
    p = tmp_path / "input.wav"
    if setup:
        setup(p)
    args = [a.format(p=p, clip=clip("emodb", EMODB[0]), tmp=tmp_path) for a in args]
    r = rtser(*args)
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_info_json():
    r = rtser("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert set(info["languages"]) >= {"de", "en", "it", "ur"}
    assert info["languages"]["de"]["labels"][0] == "anger"
    assert info["size_bytes"] <= 40e6
    assert rtser("info").stdout.startswith("bundle")


def test_listen_without_a_microphone_is_a_clear_error():
    r = rtser("listen", "--lang", "de")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "PortAudio" in r.stderr or "input device" in r.stderr
