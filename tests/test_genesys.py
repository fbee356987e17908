"""Genesys conformance: Genesys's own AudioHook code against a real ``rtser serve``.

The reference implementation lies in ``../shared/vendor/audiohook-reference`` (read-only, not
ours to copy into the repository). The ``reference`` fixture copies it to a cache folder outside
the project and installs its packages there with npm once. Its server test suite (the monitor
tests), its command-line client and a session scripted with its client library
(``tests/genesys/scripted.ts``) then talk to the server, which checks the requests' signatures.
``tests/test_signature.py`` checks the verifier itself on a request signed by the same library."""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, build_call
from test_serve import KEY, Server

VENDOR = ROOT.parent / "shared" / "vendor" / "audiohook-reference"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rtser-tests"
SCRIPTED = ROOT / "tests" / "genesys" / "scripted.ts"
SECRET = base64.b64encode(b"rtser conformance client secret").decode()
WARNING = re.compile(r"\b(WARN|ERROR|FATAL)\b")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NODE_ENV = {**os.environ, "TS_NODE_TRANSPILE_ONLY": "true"}  # ts-node without a type check


def _unavailable(why: str):
    if os.environ.get("CI"):  # CI must run the conformance suite, not pass by skipping it
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def reference() -> Path:
    """A writable copy of the reference implementation with its packages installed (kept between
    runs, installed again when the vendored package lists change)."""
    if not (VENDOR / "package.json").exists():
        _unavailable(f"Genesys's reference implementation not found at {VENDOR}")
    if shutil.which("npm") is None or shutil.which("script") is None:
        _unavailable("the AudioHook conformance tests need node 20 with npm, and script")
    manifests = [VENDOR / "package.json", VENDOR / "client" / "package.json"]
    stamp = hashlib.sha256(b"".join(p.read_bytes() for p in manifests)).hexdigest()
    copy = CACHE / "audiohook-reference"
    if not (copy / ".installed").exists() or (copy / ".installed").read_text() != stamp:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(VENDOR, copy)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        for folder in (copy, copy / "client"):
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund"],
                cwd=folder,
                check=True,
                capture_output=True,
                timeout=900,
            )
        (copy / ".installed").write_text(stamp)
    shutil.copy(SCRIPTED, copy / "client" / "src" / "rtser_scripted.ts")
    return copy


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory, utterances):
    """A 8 kHz stereo call as the platform sends it: the customer left, the agent right."""
    from rtser.audio.resample import resample

    audio, _ = build_call(utterances)
    customer = resample(audio, 16000, 8000)
    agent = np.roll(customer, 4000) * 0.5
    path = tmp_path_factory.mktemp("genesys") / "call.wav"
    sf.write(path, np.stack([customer, agent], 1), 8000, subtype="PCM_16")
    return path


def serve(tmp_path, *extra) -> Server:
    return Server(tmp_path, "--audiohook-secret", SECRET, *extra)


def client(reference, server, *args, secret=SECRET, wait=True):
    """The reference command-line client (it needs a terminal: run under ``script``); it signs
    its requests when given a secret."""
    argv = [
        "npx", "ts-node", "src/index.ts",
        "--uri", f"ws://127.0.0.1:{server.port}/audiohook", "--api-key", KEY,
        *(["--client-secret", secret] if secret else []), *args,
    ]  # fmt: skip
    command = " ".join(f"'{a}'" for a in argv)
    proc = subprocess.Popen(
        ["script", "-qec", command, "/dev/null"],
        cwd=reference / "client",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=NODE_ENV,
        text=True,
    )
    return finished(proc) if wait else proc


def node(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """A node tool of the reference implementation (npx), its output captured."""
    return subprocess.run(
        ["npx", *argv], cwd=cwd, capture_output=True, text=True, env=NODE_ENV, timeout=timeout
    )


def finished(proc) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=180)
    return proc.returncode, ANSI.sub("", out)


def warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if WARNING.search(line)]


def calls(server, kind: str) -> list[dict]:
    return [e for e in server.events() if e["type"] == kind]


def test_genesys_server_suite_passes_every_monitor_test(reference, tmp_path):
    server = serve(tmp_path)
    try:
        (reference / "testconfig.cfg").write_text(
            f"[EndPoint]\nurl=ws://127.0.0.1:{server.port}/audiohook\n"
            f"[Authentication]\napiKey={KEY}\nclientSecret={SECRET}\n"
            "[OpenParameters]\ncustomConfig={}\nlanguage=en-US\n"
            "[Features]\nsingleChannel=true\ndoubleChannel=true\ntranscriptionConnector=false\n"
        )
        out = node(["jest", "--verbose", "test/audiohook-api-messages.test.ts"], reference, 300)
    finally:
        assert server.stop() == 0
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-3000:]
    assert re.search(r"Tests:\s+8 skipped, 12 passed, 20 total", report), report[-3000:]


@pytest.mark.parametrize(
    "mode",
    [
        ["--connection-probe"],
        ["--connection-probe", "--max-stream-duration", "1"],  # a frame of audio after opened
        ["--connection-probe", "--supported-languages"],
    ],
    ids=["probe", "probe-with-audio", "probe-languages"],
)
def test_a_connection_probe_ends_cleanly(reference, tmp_path, mode):
    server = serve(tmp_path)
    try:
        rc, log = client(reference, server, *mode, "--session-log-level", "debug")
    finally:
        assert server.stop() == 0
    assert rc == 0 and not warnings(log), log
    assert calls(server, "call_start") == []  # a probe is no call
    if "--supported-languages" in mode:
        assert re.search(r'"supportedLanguages": \[[^\]]*"es"', log), log


def test_a_stereo_call_gives_both_tracks_their_turns(reference, tmp_path, call_wav):
    server = serve(tmp_path)
    try:
        rc, log = client(reference, server, "--wavfile", str(call_wav))
    finally:
        assert server.stop() == 0
    assert rc == 0 and not warnings(log), log
    turns = calls(server, "turn")
    assert {e["track"] for e in turns} == {"customer", "agent"}
    (end,) = calls(server, "call_end")
    assert end["reason"] == "close"


def test_pause_discard_and_a_language_update_follow_the_platform(reference, tmp_path, call_wav):
    server = serve(tmp_path)
    script = [[2, "pause"], [4, "resume"], [6, "discard", 1.5], [8, "update", "it-IT"]]
    argv = [f"ws://127.0.0.1:{server.port}/audiohook", KEY, SECRET, str(call_wav)]
    try:
        scripted = ["ts-node", "src/rtser_scripted.ts", *argv, json.dumps(script)]
        out = node(scripted, reference / "client", 180)
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert [r["msg"] for r in records if r["level"] >= 40] == []
    assert sum(r["msg"].startswith("scripted") for r in records) == len(script)
    events = server.events()
    (end,) = [e for e in events if e["type"] == "call_end"]
    audio_s = sf.info(call_wav).duration
    assert end["end"] == pytest.approx(audio_s + 1.5, abs=0.3)  # the discarded audio counted
    langs = [e["lang"] for e in events if e["type"] in ("turn", "segment")]
    assert langs[0] == "de" and langs[-1] == "it"  # the update's head labels the rest


def test_a_call_over_capacity_is_disconnected_cleanly(reference, tmp_path, call_wav):
    server = serve(tmp_path, "--max-calls", "1")
    try:
        rc, log = client(reference, server, "--wavfile", str(call_wav), "--session-count", "2")
    finally:
        assert server.stop() == 0
    assert rc == 0 and not warnings(log), log
    assert "reason: error" in log  # the second session was told why
    assert len(calls(server, "call_start")) == 1
    assert len(calls(server, "call_rejected")) == 1


def test_sigterm_mid_call_says_goodbye(reference, tmp_path, call_wav):
    server = serve(tmp_path)
    proc = client(reference, server, "--wavfile", str(call_wav), wait=False)
    try:
        server.wait_for(lambda e: e["type"] == "turn", seconds=60)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.stop() == 0
    rc, log = finished(proc)
    assert rc == 0 and not warnings(log), log
    assert 'reason: completed, info: "server shutting down"' in log
    (end,) = calls(server, "call_end")
    assert end["reason"] == "server shutdown"


@pytest.mark.parametrize(
    "secret",
    [base64.b64encode(b"not the client secret").decode(), None],
    ids=["wrong-secret", "unsigned"],
)
def test_a_request_the_client_secret_does_not_sign_is_refused(reference, tmp_path, secret):
    server = serve(tmp_path)
    try:
        rc, log = client(reference, server, "--max-stream-duration", "2", secret=secret)
    finally:
        assert server.stop() == 0
    assert rc == 0 and "reason: unauthorized" in log, log
    assert calls(server, "call_start") == []
    assert "refused path=/audiohook" in (tmp_path / "server.log").read_text()
