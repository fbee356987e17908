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
    return subprocess.run(
        [sys.executable, "-m", "rtser", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.fixture(scope="module")
def call(utterances, tmp_path_factory):
    audio, _ = build_call(utterances[:3])
    path = tmp_path_factory.mktemp("call") / "call.wav"
    sf.write(
        path, np.stack([audio, np.zeros_like(audio)], axis=1), 16000
    )  # stereo, speech on the left
    return path


def test_table_default(call):
    r = rtser("file", call, "--lang", "de")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["start", "end", "ch", "type"]
    assert sum(" turn " in line for line in lines) == 3


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
    assert len(rows) == 3 and all(row["type"] == "turn" for row in rows)
    if fmt != "csv":
        fields = {"type", "channel", "start", "end", "lang", "label", "probs", "seq", "arousal"}
        fields |= {"turn", "final"}
        assert set(rows[0]) == fields
    assert 0 <= float(rows[0]["arousal"]) <= 1


def test_split_channels(call):
    r = rtser(
        "file", call, "--lang", "de", "--channels", "split", "--format", "jsonl", "--segments-only"
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3 and {row["channel"] for row in rows} == {0}


def test_plot(call, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "timeline.png"
    r = rtser(
        "file", call, "--lang", "de", "--channels", "split", "--plot", png, "--format", "jsonl"
    )
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_silence_only_gives_no_events(tmp_path, data_dir):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000 * 3, np.float32), 16000)
    r = rtser("file", path, "--lang", "de", "--format", "jsonl")
    assert r.returncode == 0 and r.stdout == ""


def _nan_wav(p):
    sf.write(p, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")


@pytest.mark.parametrize(
    "setup,args,needle",
    [
        (None, ["file", "missing.wav", "--lang", "de"], "no such file"),
        (
            lambda p: p.write_bytes(b""),
            ["file", "{p}", "--lang", "de"],
            "not a readable audio file",
        ),
        (
            lambda p: p.write_text("hello"),
            ["file", "{p}", "--lang", "de"],
            "not a readable audio file",
        ),
        (_nan_wav, ["file", "{p}", "--lang", "de"], "NaN"),
        (None, ["file", "{clip}"], "choose one with --lang"),
        (None, ["file", "{clip}", "--lang", "xx"], "available: de"),
        (None, ["file", "{clip}", "--lang", "de", "--bundle", "{tmp}"], "manifest.json missing"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, data_dir, setup, args, needle):
    p = tmp_path / "input.wav"
    if setup:
        setup(p)
    args = [a.format(p=p, clip=clip("emodb", EMODB[0]), tmp=tmp_path) for a in args]
    r = rtser(*args)
    assert r.returncode == 2
    assert (
        needle in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
        and "Traceback" not in r.stderr
    )


def test_info_json():
    r = rtser("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert set(info["languages"]) >= {"de", "en", "it", "ur"}
    assert info["languages"]["de"]["labels"][0] == "anger"
    assert info["size_bytes"] <= 40e6
    table = rtser("info")
    assert table.returncode == 0 and table.stdout.startswith("bundle"), table.stderr
    assert {
        line.split()[1].rstrip(":")
        for line in table.stdout.splitlines()
        if line.startswith("language")
    } == set(info["languages"])


def test_listen_on_a_device_that_does_not_exist_is_a_clear_error():
    """Fails the same way with or without a microphone (or PortAudio) on the machine."""
    r = rtser("listen", "--lang", "de", "--device", "98765")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "PortAudio" in r.stderr or "no input device 98765" in r.stderr
    assert "listening" not in r.stderr


@pytest.mark.parametrize(
    "args,needle",
    [
        (["file", "{tmp}", "--lang", "de"], "is a directory"),
        (["file", "{clip}", "{clip}", "--lang", "de"], "unexpected extra argument"),
        (["file", "{clip}", "--lang", "de", "--vad", "7"], "--vad"),
        (["file", "{clip}", "--lang", "de", "--format", "xml"], "--format"),
        (["file", "{clip}", "--lang", "de", "--threads", "0"], "--threads"),
        (["fiel", "{clip}"], "No such command"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, data_dir, args, needle):
    r = rtser(*[a.format(tmp=tmp_path, clip=clip("emodb", EMODB[0])) for a in args])
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("rtser: error: ")


def test_plot_without_matplotlib_fails_before_the_analysis(call):
    code = (
        "import sys; sys.modules['matplotlib'] = None; from rtser.cli import main; sys.argv = "
        f"['rtser', 'file', {str(call)!r}, '--lang', 'de', '--plot', 'x.png']; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "pip install 'rtser[plot]'" in r.stderr
    assert r.stdout == ""  # no rows: it stopped before analysing


def test_truncated_wav_and_huge_samples_exit_2(tmp_path, utterances):
    cut = tmp_path / "cut.wav"
    sf.write(cut, utterances[0], 16000)
    cut.write_bytes(cut.read_bytes()[:-2000])
    loud = tmp_path / "loud.wav"
    sf.write(loud, utterances[0] * 1e18, 16000, subtype="FLOAT")
    for path, needle in [(cut, "truncated"), (loud, "outside [-1, 1]")]:
        r = rtser("file", path, "--lang", "de")
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _on_a_terminal(args, stdout_tty: bool) -> tuple[str, str]:
    """Run rtser with stderr (and maybe stdout) on a pseudo-terminal, as a person at a shell
    does."""
    import os
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "rtser", *map(str, args)],
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    piped = p.stdout.read().decode() if p.stdout else ""
    p.wait(timeout=300)
    os.close(master)
    return terminal.decode(errors="replace"), piped


def test_progress_bar_never_shares_a_terminal_with_the_rows(tmp_path, utterances):
    audio, _ = build_call(utterances[:2], gap_s=30.0)  # > 60 s: long enough for a bar
    path = tmp_path / "long.wav"
    sf.write(path, audio, 16000)
    terminal, _ = _on_a_terminal(["file", path, "--lang", "de"], stdout_tty=True)
    assert " turn " in terminal and "analysing" not in terminal
    terminal, piped = _on_a_terminal(["file", path, "--lang", "de"], stdout_tty=False)
    assert "analysing" in terminal and " turn " in piped and "analysing" not in piped


def test_readme_example_is_what_rtser_prints():
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    shown = re.search(
        r"\$ rtser file examples/ravdess-anger-actor01.flac --lang en\n(.*?)```", readme, re.S
    ).group(1)
    r = rtser("file", ROOT / "examples" / "ravdess-anger-actor01.flac", "--lang", "en")
    assert r.returncode == 0 and r.stdout == shown


EXAMPLE = "examples/ravdess-anger-actor01.flac"


def test_options_are_checked_before_the_analysis(tmp_path):
    from conftest import ROOT

    example = ROOT / EXAMPLE
    r = rtser("file", example, "--lang", "en", "--plot", tmp_path / "no" / "such" / "x.png")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert "does not exist" in r.stderr
    r = rtser("file", example, "--lang", "en", "--summary", "--negative", "angry,sadd")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "angry, sadd" in r.stderr


def test_a_language_as_platforms_write_it(tmp_path):
    from conftest import ROOT

    for lang in ("EN", "en-US", "en_GB"):
        r = rtser("file", ROOT / EXAMPLE, "--lang", lang, "--format", "jsonl")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.splitlines()[0])["lang"] == "en"


def test_summary_as_csv(tmp_path):
    from conftest import ROOT

    r = rtser("file", ROOT / EXAMPLE, "--lang", "en", "--summary", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["track"] == "0" and float(rows[0]["talk_s"]) > 0
    assert rows[0]["turns"] == "1" and rows[0]["overlap_s"] == "0.0"
    assert "mean_arousal" in rows[0] and any(k.startswith("share_") for k in rows[0])


def test_a_site_file_learns_from_each_call_and_labels_the_next_with_it(call, tmp_path):
    site, args = tmp_path / "site.json", ("file", call, "--lang", "de", "--format", "jsonl")
    first = rtser(*args, "--segments-only", "--site", site)
    assert first.returncode == 0, first.stderr
    turns = len(first.stdout.splitlines())
    assert json.loads(site.read_text())["de"]["turns"] == turns == 3
    assert first.stdout == rtser(*args, "--segments-only").stdout  # a new site takes nothing out
    second = rtser(*args, "--segments-only", "--site", site)
    assert json.loads(site.read_text())["de"]["turns"] == 2 * turns
    assert second.stdout != first.stdout  # labelled with what the first call taught the site
