"""`rtser batch` on a folder of generated calls: the same events as `rtser file`, errors named,
resumable, and the same Parquet from a local process pool and from a real local Ray cluster."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import build_call

pq = pytest.importorskip("pyarrow.parquet")


SPLIT_DE = ("--lang", "de", "--channels", "split")  # every run over the archive scores it so


def rtser(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "rtser", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        **kw,
    )


@pytest.fixture(scope="module")
def archive(utterances, tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    (root / "day1").mkdir()
    mono, _ = build_call(utterances[:2])
    sf.write(root / "day1" / "mono.wav", mono, 16000)
    left, _ = build_call(utterances[2:4])
    right, _ = build_call(utterances[4:6])
    n = max(len(left), len(right))
    stereo = np.stack(
        [np.pad(left, (0, n - len(left))), np.pad(right, (0, n - len(right)))], axis=1
    )
    sf.write(root / "day1" / "stereo.flac", stereo, 16000)
    (root / "day1" / "broken.wav").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def scored(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "run"
    r = rtser("batch", archive, "--out", out, *SPLIT_DE, "--workers", "2")
    assert r.returncode == 1, r.stderr  # broken.wav could not be scored: a scheduler sees it
    return out


def table(path):
    return pq.read_table(path).to_pylist()


def test_events_are_those_of_rtser_file(archive, scored):
    events = table(scored / "events.parquet")
    for name in ("mono.wav", "stereo.flac"):
        r = rtser(
            "file",
            archive / "day1" / name,
            *SPLIT_DE,
            "--format",
            "jsonl",
            "--interim",  # every event, as the archive stores them
        )
        expected = [json.loads(line) for line in r.stdout.splitlines()]
        got = [e for e in events if e["call_id"] == f"day1/{name}"]
        assert len(got) == len(expected) > 0
        for g, x in zip(got, expected):
            assert (g["type"], g["channel"], g["seq"], g["label"]) == (
                x["type"],
                x["channel"],
                x["seq"],
                x["label"],
            )
            assert (g["start"], g["end"]) == (x["start"], x["end"])
            assert dict(g["probs"]) == pytest.approx(x["probs"], abs=1e-4)
            assert g["arousal"] == pytest.approx(x["arousal"], abs=1e-3)
    calls = {c["call_id"]: c for c in table(scored / "calls.parquet")}
    assert (
        set(calls) == {"day1/mono.wav", "day1/stereo.flac"}
        and calls["day1/stereo.flac"]["channels"] == 2
    )
    assert json.loads(calls["day1/mono.wav"]["summary"])["0"]["segments"] == 2


def test_unreadable_files_are_named_in_errors_csv(scored):
    with open(scored / "errors.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["call_id"] for r in rows] == [
        "day1/broken.wav"
    ] and "not a readable audio file" in rows[0]["error"]
    run = json.loads((scored / "run.json").read_text())
    assert (run["scored"], run["failed"], run["calls"]) == (2, 1, 3) and len(
        run["bundle_sha256"]
    ) == 64


def test_a_second_run_does_nothing_and_lost_rows_come_back(archive, scored, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(scored, out)
    before = {name: table(out / name) for name in ("events.parquet", "calls.parquet")}
    written = {name: (out / name).stat().st_mtime_ns for name in before}
    again = ("batch", archive, "--out", out, *SPLIT_DE, "--workers", "1")
    assert rtser(*again).returncode == 1  # broken.wav again
    assert json.loads((out / "run.json").read_text())["scored"] == 0
    assert {name: (out / name).stat().st_mtime_ns for name in before} == written  # not rewritten
    assert {name: table(out / name) for name in before} == before
    for name in before:  # lose one call's rows
        t = pq.read_table(out / name)
        pq.write_table(
            t.filter(np.array(t.column("call_id").to_pylist()) != "day1/mono.wav"), out / name
        )
    assert rtser(*again).returncode == 1
    assert json.loads((out / "run.json").read_text())["scored"] == 1
    assert {name: table(out / name) for name in before} == before


def test_ray_gives_the_same_parquet(archive, scored, tmp_path):
    ray = shutil.which("ray") or str(__import__("pathlib").Path(sys.executable).parent / "ray")
    start = subprocess.run(
        [
            ray,
            "start",
            "--head",
            "--num-cpus",
            "2",
            "--node-ip-address",
            "127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert start.returncode == 0, start.stderr
    try:
        out = tmp_path / "ray"
        r = rtser("batch", archive, "--out", out, *SPLIT_DE, "--ray", "auto")
        assert r.returncode == 1, r.stderr  # broken.wav
        for name in ("events.parquet", "calls.parquet"):
            assert table(out / name) == table(scored / name)
        assert json.loads((out / "run.json").read_text())["ray"] == "auto"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=300)


def test_an_archive_already_scored_is_not_written_again(archive, scored, tmp_path):
    out = tmp_path / "done"
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(archive / "day1" / "mono.wav", good / "mono.wav")
    first = rtser("batch", good, "--out", out, "--lang", "de", "--workers", "1")
    assert first.returncode == 0, first.stderr
    files = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert rtser("batch", good, "--out", out, "--lang", "de", "--workers", "1").returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == files


def test_bad_inputs_are_one_line_errors(archive, tmp_path):
    r = rtser("batch", archive, "--out", tmp_path / "o", "--lang", "xx")
    assert r.returncode == 2 and "'xx' is not in the bundle" in r.stderr
    r = rtser("batch", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert (
        r.returncode == 2
        and "no such file or folder" in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    )


def test_a_killed_run_keeps_every_finished_call(archive, scored, tmp_path):
    import signal
    import time

    out = tmp_path / "killed"
    p = subprocess.Popen(
        [sys.executable, "-m", "rtser", "batch", str(archive), "--out", str(out), *SPLIT_DE]
        + ["--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(3000):  # until the first call is committed
        if list((out / "parts").glob("*.calls.parquet")) or p.poll() is not None:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = rtser("batch", archive, "--out", out, *SPLIT_DE, "--workers", "1")
    assert r.returncode == 1 and json.loads((out / "run.json").read_text())["skipped"] >= 1
    for name in ("events.parquet", "calls.parquet"):
        assert table(out / name) == table(scored / name)


def test_a_run_killed_while_merging_does_not_double_any_call(scored, tmp_path):
    """Killed after the merged files were written but before the parts were removed: the next run
    merges the same parts again, and every call still appears once."""
    from rtser.batch import Output, Scored

    out = tmp_path / "merging"
    shutil.copytree(scored, out)
    events, calls = table(out / "events.parquet"), table(out / "calls.parquet")
    output = Output(out)
    for call in calls:  # the parts as they were just before the merge
        rows = [{**e, "probs": list(e["probs"])} for e in events if e["call_id"] == call["call_id"]]
        output.commit(Scored(call["key"], rows, call))
    assert output.merge() == {"events": len(events), "calls": len(calls)}
    assert table(out / "events.parquet") == events and table(out / "calls.parquet") == calls
