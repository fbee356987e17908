"""`rtser serve` as the phone system sees it: a real server on loopback, real protocol clients
(Twilio Media Streams, Genesys AudioHook, Asterisk AudioSocket), the event feed, metrics, refusals,
malformed input and SIGTERM."""

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import soundfile as sf
from conftest import build_call
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rtser import Recognizer
from rtser.audio import g711
from rtser.audio.resample import resample
from sim.sip import ulaw_bytes as mulaw

KEY = "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp_path, *extra, env=None):
        self.port, self.as_port, self.agent_port = free_port(), free_port(), free_port()
        self.events_file = tmp_path / "events.jsonl"
        self.log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rtser",
                "serve",
                "--lang",
                "de",
                "--port",
                str(self.port),
                "--audiosocket-port",
                str(self.as_port),
                "--audiosocket-agent-port",
                str(self.agent_port),
                "--events",
                str(self.events_file),
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RTSER_API_KEY": KEY, **(env or {})},
        )
        for _ in range(600):
            try:
                if self.get("/healthz") == "ok\n":
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError("server did not come up")

    def url(self, path, scheme="http"):
        sep = "&" if "?" in path else "?"
        return f"{scheme}://127.0.0.1:{self.port}{path}{sep}key={KEY}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return r.read().decode()

    def events(self):
        return [json.loads(line) for line in self.events_file.read_text().splitlines()]

    def wait_for(self, predicate, seconds=120):
        for _ in range(int(seconds * 10)):
            found = [e for e in self.events() if predicate(e)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError("event never came")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    s = Server(tmp_path_factory.mktemp("serve"), "--max-calls", "3")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def speech8k(utterances):
    audio, _ = build_call(utterances[:2], gap_s=0.6)
    return resample(audio, 16000, 8000)


def twilio_messages(call_sid, x8k, lang=None, tracks=("inbound",), outbound=None):
    """The messages of a Twilio stream; ``outbound`` (8 kHz) is the agent's audio, else ``x8k``
    again."""
    payloads = {"inbound": mulaw(x8k), "outbound": mulaw(x8k if outbound is None else outbound)}
    payload = payloads["inbound"]
    start = {
        "streamSid": "MZ1",
        "accountSid": "AC1",
        "callSid": call_sid,
        "tracks": list(tracks),
        "customParameters": {"lang": lang} if lang else {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    yield json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    yield json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": "MZ1"})
    for n, i in enumerate(range(0, len(payload), 160)):
        for track in tracks:
            yield json.dumps(
                {
                    "event": "media",
                    "sequenceNumber": str(n + 2),
                    "streamSid": "MZ1",
                    "media": {
                        "track": track,
                        "chunk": str(n),
                        "timestamp": str(n * 20),
                        "payload": base64.b64encode(payloads[track][i : i + 160]).decode(),
                    },
                }
            )
    yield json.dumps({"event": "stop", "stop": {"accountSid": "AC1", "callSid": call_sid}})


def test_health_metrics_and_auth(server):
    assert server.get("/healthz") == "ok\n"
    metrics = server.get("/metrics")
    for name in (
        "rtser_active_calls",
        "rtser_events_total",
        "rtser_audio_seconds_total",
        "rtser_dropped_audio_seconds_total",
        "rtser_rejected_calls_total",
        "rtser_event_latency_seconds_bucket",
    ):
        assert name in metrics
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
    assert e.value.code == 401
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/v1/calls", headers={"X-API-KEY": KEY}
    )
    assert set(json.loads(urllib.request.urlopen(req, timeout=10).read())) == {"active", "recent"}


def test_twilio_call_gives_events_on_the_feed_and_in_the_file(server, speech8k):
    with connect(server.url("/v1/events?call=CA-twilio-1", "ws")) as feed:
        with connect(server.url("/twilio", "ws")) as ws:
            for msg in twilio_messages(
                "CA-twilio-1", speech8k, lang="de", tracks=("inbound", "outbound")
            ):
                ws.send(msg)
        end = server.wait_for(lambda e: e["call"] == "CA-twilio-1" and e["type"] == "call_end")[0]
        received = []
        while not received or received[-1]["type"] != "call_end":
            received.append(json.loads(feed.recv(timeout=60)))
    mine = [e for e in server.events() if e["call"] == "CA-twilio-1"]
    assert received == mine
    assert mine[0]["type"] == "call_start" and [e["seq"] for e in mine] == list(range(len(mine)))
    segments = [e for e in mine if e["type"] == "segment"]
    assert {e["track"] for e in segments} == {"customer", "agent"}
    assert sum(e["track"] == "customer" for e in segments) == 2
    assert all(
        set(e) >= {"call", "track", "type", "start", "end", "lang", "label", "probs", "seq"}
        for e in mine
    )
    assert end["summary"]["customer"]["segments"] == 2
    assert abs(sum(end["summary"]["customer"]["label_share"].values()) - 1) < 0.01


def test_audiohook_monitor_call(server, speech8k):
    sid = str(uuid.uuid4())
    stereo = np.stack([speech8k, 0.01 * speech8k], axis=1).reshape(
        -1
    )  # customer loud, agent quiet echo
    payload = mulaw(stereo)
    with connect(server.url("/audiohook", "ws")) as ws:

        def send(kind, seq, params):
            ws.send(
                json.dumps(
                    {
                        "version": "2",
                        "id": sid,
                        "type": kind,
                        "seq": seq,
                        "serverseq": 0,
                        "position": "PT0S",
                        "parameters": params,
                    }
                )
            )
            return json.loads(ws.recv(timeout=60)) if kind in ("open", "ping", "close") else None

        opened = send(
            "open",
            1,
            {
                "organizationId": "org",
                "conversationId": "conv-hook-1",
                "language": "it-IT",
                "participant": {"id": "p"},
                "media": [
                    {
                        "type": "audio",
                        "format": "PCMU",
                        "channels": ["external", "internal"],
                        "rate": 8000,
                    }
                ],
            },
        )
        assert opened["type"] == "opened" and opened["parameters"]["media"][0]["format"] == "PCMU"
        for i in range(0, len(payload), 3200):  # 200 ms frames
            ws.send(payload[i : i + 3200])
        assert send("ping", 2, {})["type"] == "pong"
        assert send("close", 3, {"reason": "end"})["type"] == "closed"
    events = server.wait_for(lambda e: e["call"] == "conv-hook-1" and e["type"] == "call_end")
    mine = [e for e in server.events() if e["call"] == "conv-hook-1"]
    assert all(e["lang"] == "it" for e in mine)
    assert {e["track"] for e in mine if e["type"] == "segment"} == {"customer"}
    assert events[0]["summary"]["customer"]["segments"] == 2


MONO = [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}]


def hook(kind, seq, **parameters):
    return json.dumps(
        {"version": "2", "id": "s", "type": kind, "seq": seq, "parameters": parameters}
    )


def test_audiohook_probe_answers_without_a_call(server):
    """A Genesys admin's "test connection": open, opened (with the languages when asked), a frame
    of audio, close, closed."""
    probe = "00000000-0000-0000-0000-000000000000"
    with connect(server.url("/audiohook", "ws")) as ws:
        ws.send(hook("open", 1, conversationId=probe, media=MONO, supportedLanguages=True))
        answer = json.loads(ws.recv(timeout=30))
        assert answer["type"] == "opened"
        assert {"de", "en", "es"} <= set(answer["parameters"]["supportedLanguages"])
        ws.send(b"")  # the probe's audio frame
        ws.send(b"\xff" * 1600)
        ws.send(hook("close", 2, reason="end"))
        assert json.loads(ws.recv(timeout=30))["type"] == "closed"
    assert not any(e["call"] == probe for e in server.events())


def audiosocket_frames(call_uuid: uuid.UUID, x8k: np.ndarray):
    yield b"\x01" + (16).to_bytes(2, "big") + call_uuid.bytes
    pcm = (np.clip(x8k, -1, 1) * 32767).astype("<i2").tobytes()
    for i in range(0, len(pcm), 320):
        chunk = pcm[i : i + 320]
        yield b"\x10" + len(chunk).to_bytes(2, "big") + chunk
    yield b"\x00\x00\x00"


def test_audiosocket_call(server, speech8k):
    call_uuid = uuid.uuid4()
    with socket.create_connection(("127.0.0.1", server.as_port)) as s:
        s.sendall(b"".join(audiosocket_frames(call_uuid, speech8k)))
        assert s.recv(16) == b""  # nothing is sent back; the server closes after the hang-up
    end = server.wait_for(lambda e: e["call"] == str(call_uuid) and e["type"] == "call_end")[0]
    assert end["summary"]["caller"]["segments"] == 2


def test_the_site_baseline_learns_each_calls_turns_and_keeps_them_in_its_file(tmp_path, speech8k):
    site = tmp_path / "site.json"
    s = Server(tmp_path, "--site", str(site))
    try:
        for n in (1, 2):
            call_uuid = uuid.uuid4()
            with socket.create_connection(("127.0.0.1", s.as_port)) as conn:
                conn.sendall(b"".join(audiosocket_frames(call_uuid, speech8k)))
                assert conn.recv(16) == b""
            call = str(call_uuid)
            s.wait_for(lambda e, call=call: e["call"] == call and e["type"] == "call_end")
            turns = [e for e in s.events() if e["type"] == "turn"]
            assert json.loads(site.read_text())["de"]["turns"] == len(turns) >= 2 * n
            assert f'rtser_site_turns{{lang="de"}} {len(turns)}' in s.get("/metrics")
    finally:
        assert s.stop() == 0


def test_a_tapped_call_comes_as_two_connections_and_is_one_call_with_two_tracks(server, speech8k):
    """The passive tap: one AudioSocket connection per direction, with the call's UUID, the
    caller's voice on --audiosocket-port and the agent's on --audiosocket-agent-port."""
    call_uuid = uuid.uuid4()
    mine = str(call_uuid)
    caller = socket.create_connection(("127.0.0.1", server.as_port))
    agent = socket.create_connection(("127.0.0.1", server.agent_port))
    with caller, agent:
        for side, audio in ((caller, speech8k), (agent, speech8k[::-1].copy())):
            side.sendall(b"".join(list(audiosocket_frames(call_uuid, audio))[:-1]))
        time.sleep(0.5)  # both connected, as the tap's are for the whole call
        caller.shutdown(socket.SHUT_WR)  # Asterisk hangs up by closing, one side first
        time.sleep(0.5)
        assert not [e for e in server.events() if e["type"] == "call_end" and e["call"] == mine]
        agent.shutdown(socket.SHUT_WR)
        end = server.wait_for(lambda e: e["call"] == mine and e["type"] == "call_end")
    events = [e for e in server.events() if e["call"] == mine]
    assert [e["type"] for e in events].count("call_start") == 1 and len(end) == 1
    assert {e["track"] for e in events if e["type"] == "turn"} == {"caller", "agent"}
    assert set(end[0]["summary"]) == {"caller", "agent"}
    assert end[0]["end"] == pytest.approx(len(speech8k) / 8000, abs=0.05)  # tracks in parallel


def test_mulaw_sent_as_slin_ends_the_call_with_a_one_line_reason(server, speech8k):
    """A μ-law channel dialled without c(slin16): 160-byte frames every 20 ms, labelled 8 kHz
    slin. Read as slin it is loud noise; the call ends at once, saying what to change."""
    call_uuid = uuid.uuid4()
    ulaw = mulaw(speech8k[:8000])
    with socket.create_connection(("127.0.0.1", server.as_port)) as s:
        s.sendall(b"\x01\x00\x10" + call_uuid.bytes)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server hangs up
            for i in range(0, len(ulaw), 160):
                s.sendall(b"\x10\x00\xa0" + ulaw[i : i + 160])
                time.sleep(0.02)
    end = server.wait_for(lambda e: e["call"] == str(call_uuid) and e["type"] == "call_end")[0]
    assert "μ-law" in end["reason"] and "c(slin16)" in end["reason"]
    assert not [e for e in server.events() if e["call"] == str(call_uuid) and e["type"] == "turn"]


def test_a_malformed_call_ends_alone(server, speech8k):
    """A bad AudioSocket frame ends that call; a Twilio call running at the same time is
    untouched."""

    def good_call():
        with connect(server.url("/twilio", "ws")) as ws:
            for m in twilio_messages("CA-good", speech8k):
                ws.send(m)

    good = threading.Thread(target=good_call)
    good.start()
    bad = uuid.uuid4()
    with socket.create_connection(("127.0.0.1", server.as_port)) as s:
        s.sendall(b"\x01\x00\x10" + bad.bytes + b"\x10\x00\x04" + b"\x00" * 4 + b"\x42\x00\x01\x00")
        assert s.recv(16) == b""
    end = server.wait_for(lambda e: e["call"] == str(bad) and e["type"] == "call_end")[0]
    assert "unknown frame type 0x42" in end["reason"]
    good.join()
    assert (
        server.wait_for(lambda e: e["call"] == "CA-good" and e["type"] == "call_end")[0]["summary"][
            "customer"
        ]["segments"]
        == 2
    )
    with connect(server.url("/twilio", "ws")) as ws:  # media before start
        ws.send(json.dumps({"event": "media", "media": {"track": "inbound", "payload": ""}}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
    assert server.get("/healthz") == "ok\n"


def test_calls_beyond_max_calls_are_refused_and_counted(server, speech8k):
    before = server.get("/metrics")
    stack = contextlib.ExitStack()
    holders = [stack.enter_context(connect(server.url("/twilio", "ws"))) for _ in range(3)]
    for i, ws in enumerate(holders):
        msgs = twilio_messages(f"CA-hold-{i}", speech8k[:800])
        ws.send(next(msgs))
        ws.send(next(msgs))
    server.wait_for(lambda e: e["call"] == "CA-hold-2" and e["type"] == "call_start")
    with connect(server.url("/twilio", "ws")) as ws:
        msgs = twilio_messages("CA-over", speech8k[:800])
        ws.send(next(msgs))
        ws.send(next(msgs))
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=30)
    assert "capacity" in str(closed.value)
    rejected = lambda text: float(
        next(
            line.split()[1]
            for line in text.splitlines()
            if line.startswith("rtser_rejected_calls_total")
        )
    )
    assert rejected(server.get("/metrics")) == rejected(before) + 1
    over = [e for e in server.events() if e["call"] == "CA-over"]
    assert [(e["type"], e["reason"]) for e in over] == [("call_rejected", "capacity")]
    assert 'rtser_refused_calls_total{reason="capacity"}' in server.get("/metrics")
    with pytest.raises(urllib.error.HTTPError) as full:  # a load balancer sends calls elsewhere
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=10)
    assert full.value.code == 503 and full.value.read().startswith(b"full: at capacity")
    with socket.create_connection(("127.0.0.1", server.as_port)) as s:  # AudioSocket: hang-up
        s.sendall(next(audiosocket_frames(uuid.uuid4(), speech8k[:800])))
        assert s.recv(3) == b"\x00\x00\x00"
    with connect(server.url("/audiohook", "ws")) as ws:  # refused, then the close handshake
        ws.send(hook("open", 1, conversationId="conv-over", media=MONO))
        refusal = json.loads(ws.recv(timeout=30))
        assert refusal["type"] == "disconnect" and "capacity" in refusal["parameters"]["info"]
        ws.send(hook("close", 2, reason="disconnect"))
        assert json.loads(ws.recv(timeout=30))["type"] == "closed"
    stack.close()  # clients that go away without a stop are a hang-up: call_end follows
    for i in range(3):
        server.wait_for(lambda e, i=i: e["call"] == f"CA-hold-{i}" and e["type"] == "call_end")


def test_a_language_without_a_head_gets_the_any_head(server, speech8k):
    with connect(server.url("/twilio", "ws")) as ws:
        for msg in twilio_messages("CA-xx", speech8k[:16000], lang="xx"):
            ws.send(msg)
    end = server.wait_for(lambda e: e["call"] == "CA-xx" and e["type"] == "call_end")[0]
    assert end["lang"] == "any"


def test_without_an_any_head_an_unknown_language_is_refused_with_the_reason(tmp_path):
    import shutil

    from rtser.bundle import DEFAULT, Bundle
    from rtser.serve.hub import CallRefused, Hub

    copy = tmp_path / "bundle"
    shutil.copytree(DEFAULT, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["languages"]["any"], manifest["files"]["head-any.npz"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CallRefused, match="'xx' is not in the bundle"):
        Hub(Bundle(copy), None).recognizer("xx")


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []
    signatures: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        stamp = self.headers["X-Rtser-Timestamp"]
        Hook.signatures.append((stamp, body, self.headers["X-Rtser-Signature"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_and_sigterm_flush_an_open_call(tmp_path, data_dir, speech8k):
    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    s = Server(
        tmp_path,
        "--webhook",
        f"http://127.0.0.1:{hook.server_port}/events",
        env={"RTSER_WEBHOOK_SECRET": "hook-secret"},
    )
    with connect(s.url("/twilio", "ws")) as ws:
        for m in list(twilio_messages("CA-term", speech8k))[:-1]:  # no stop: the call is still open
            ws.send(m)
        s.wait_for(lambda e: e["call"] == "CA-term" and e["type"] == "segment")
        assert s.stop() == 0
    end = [e for e in s.events() if e["type"] == "call_end"]
    assert (
        end
        and end[0]["reason"] == "server shutdown"
        and end[0]["summary"]["customer"]["segments"] >= 1
    )
    for _ in range(100):
        if any(e["type"] == "call_end" for e in Hook.received):
            break
        time.sleep(0.1)
    assert [e["seq"] for e in Hook.received] == [e["seq"] for e in s.events()]
    for (
        stamp,
        body,
        signed,
    ) in Hook.signatures:  # what a receiver checks, with its copy of the secret
        mac = hmac.new(b"hook-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signed, "sha256=" + mac)
    assert all(e["schema"] == 2 for e in s.events())
    hook.shutdown()


def test_audiohook_refuses_unknown_messages_and_oversized_frames(server):
    def opened(ws, conversation):
        ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": "s",
                    "type": "open",
                    "seq": 1,
                    "parameters": {
                        "conversationId": conversation,
                        "media": [
                            {
                                "type": "audio",
                                "format": "PCMU",
                                "channels": ["external"],
                                "rate": 8000,
                            }
                        ],
                    },
                }
            )
        )
        assert json.loads(ws.recv(timeout=30))["type"] == "opened"

    with connect(server.url("/audiohook", "ws")) as ws:
        opened(ws, "conv-unknown")
        ws.send(
            json.dumps({"version": "2", "id": "s", "type": "dance", "seq": 2, "parameters": {}})
        )
        reply = json.loads(ws.recv(timeout=30))
        assert (
            reply["type"] == "disconnect"
            and "unknown message type 'dance'" in reply["parameters"]["info"]
        )
    with connect(server.url("/audiohook", "ws")) as ws:
        opened(ws, "conv-oversized")
        ws.send(b"\xff" * (300 * 1024))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
    assert (
        "unknown message type"
        in server.wait_for(lambda e: e["call"] == "conv-unknown" and e["type"] == "call_end")[0][
            "reason"
        ]
    )
    assert (
        "size limit"
        in server.wait_for(lambda e: e["call"] == "conv-oversized" and e["type"] == "call_end")[0][
            "reason"
        ]
    )


def test_audiosocket_at_16k(server, utterances):
    audio, _ = build_call(utterances[:1], gap_s=0.6)
    pcm = (audio * 32767).astype("<i2").tobytes()
    call_uuid = uuid.uuid4()
    frames = [b"\x01\x00\x10" + call_uuid.bytes] + [
        b"\x12" + len(pcm[i : i + 640]).to_bytes(2, "big") + pcm[i : i + 640]
        for i in range(0, len(pcm), 640)
    ]
    with socket.create_connection(("127.0.0.1", server.as_port)) as s:
        s.sendall(b"".join(frames))  # no hang-up frame: the end of the stream is one
    end = server.wait_for(lambda e: e["call"] == str(call_uuid) and e["type"] == "call_end")[0]
    assert end["summary"]["caller"]["segments"] == 1
    assert end["reason"] == "hang-up (connection closed)"


def test_a_port_in_use_is_a_one_line_error(server):
    r = subprocess.run(
        [sys.executable, "-m", "rtser", "serve", "--lang", "de", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        r.returncode == 2
        and "cannot listen" in r.stderr
        and r.stderr.strip().splitlines()[-1].startswith("rtser: error:")
    )


def test_audio_queued_behind_a_busy_pool_goes_in_one_push_and_a_bad_block_alone(speech8k):
    """A call's worker pushes everything queued for a track at once: the same events as pushing
    block by block, and a bad block among the queued ones loses only itself (in-process hub)."""
    import asyncio

    from rtser.bundle import Bundle
    from rtser.serve.hub import Hub, Track

    blocks = np.array_split(speech8k.astype(np.float32), 50)
    reference = Recognizer("en").stream(8000)
    expected = [e for b in blocks for e in reference.push(b)] + reference.close()

    async def served(bad: bool) -> list[dict]:
        hub = Hub(Bundle(), "en", threads=1)
        feed = hub.subscribe(None)
        call = hub.open_call("queued", None, "test")
        for i, block in enumerate(blocks):  # the worker has not run yet: all of it is queued
            call.push((Track.CALLER,), block, 8000)
            if bad and i == 20:
                call.push((Track.CALLER,), np.full(160, np.nan, np.float32), 8000)
        await call.finish()
        hub.pool.shutdown()
        return [
            e
            for e in (feed.get_nowait() for _ in range(feed.qsize()))
            if e["type"] in ("label", "segment", "turn")
        ]

    want = [(e.type, e.to_dict()["start"], e.to_dict()["end"], e.label) for e in expected]
    assert any(e.type == "segment" for e in expected)
    for bad in (False, True):
        assert [
            (e["type"], e["start"], e["end"], e["label"]) for e in asyncio.run(served(bad))
        ] == want


def test_startup_errors_are_one_line_and_name_the_option(tmp_path, server):
    serve = [sys.executable, "-m", "rtser", "serve"]
    r = subprocess.run([*serve, "--lang", "xx"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--lang xx" in r.stderr and len(r.stderr.splitlines()) == 1
    r = subprocess.run(
        [*serve, "--lang", "de", "--site", str(tmp_path / "no" / "site.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "site baseline" in r.stderr and len(r.stderr.splitlines()) == 1
    busy = [*serve, "--lang", "de", "--port", str(server.port)]
    r = subprocess.run(busy, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"port {server.port}:" in r.stderr.splitlines()[-1]


def test_the_favicon_needs_no_key_and_a_call_says_which_language_it_asked_for(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/favicon.ico", timeout=10) as r:
        assert r.status == 204
    with connect(server.url("/twilio", "ws")) as ws:
        for msg in twilio_messages("CA-lang-fr", np.zeros(8000, np.float32), lang="fr-FR"):
            ws.send(msg)
    start = server.wait_for(lambda e: e["call"] == "CA-lang-fr" and e["type"] == "call_start")[0]
    assert (start["lang_requested"], start["lang"]) == ("fr-FR", "any")


def test_health_needs_no_key_and_a_live_view_opened_mid_call_gets_the_call_so_far(server, speech8k):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as r:
        assert r.read() == b"ok\n"
    with connect(server.url("/twilio", "ws")) as ws:
        msgs = list(twilio_messages("CA-mid-call", speech8k))
        for msg in msgs[:-1]:  # everything but the stop: the call is still live
            ws.send(msg)
        server.wait_for(lambda e: e["call"] == "CA-mid-call" and e["type"] == "turn")
        live = next(
            c for c in json.loads(server.get("/v1/calls"))["active"] if c["call"] == "CA-mid-call"
        )
        sent = [
            e for e in server.events() if e["call"] == "CA-mid-call" and e["type"] != "call_start"
        ]
        assert live["events"] == sent[: len(live["events"])] and len(live["events"]) >= len(sent)
        ws.send(msgs[-1])
    server.wait_for(lambda e: e["call"] == "CA-mid-call" and e["type"] == "call_end")
    ended = next(
        c for c in json.loads(server.get("/v1/calls"))["recent"] if c["call"] == "CA-mid-call"
    )
    assert ended["reason"] == "stop" and ended["events"] == []


def test_an_admitted_call_loses_no_audio_on_a_slow_box(tmp_path, speech8k):
    """Every push takes 50 ms longer than here, and the call's audio arrives all at once: it is
    processed late, not dropped, and its events are those of the same audio streamed alone."""
    slow = Server(tmp_path, env={"RTSER_SLOW_PUSH_S": "0.05"})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{slow.port}/readyz", timeout=10) as r:
            assert r.read() == b"ready\n"  # no call yet: nothing measured, nothing behind
        with connect(slow.url("/twilio", "ws")) as ws:
            for msg in twilio_messages("CA-slow", speech8k):
                ws.send(msg)
        slow.wait_for(lambda e: e["call"] == "CA-slow" and e["type"] == "call_end")
        metrics = slow.get("/metrics")
    finally:
        slow.stop()
    reference = Recognizer("de").stream(8000)
    audio = g711.ulaw(mulaw(speech8k))
    want = [e.to_dict() for e in reference.push(audio) + reference.close()]
    got = [e for e in slow.events() if e["call"] == "CA-slow" and e["type"] in LABEL_TYPES]
    assert [(e["type"], e["start"], e["end"], e["label"]) for e in got] == [
        (e["type"], e["start"], e["end"], e["label"]) for e in want
    ]
    assert "rtser_dropped_audio_seconds_total 0.000" in metrics
    assert "rtser_admitted_calls_total 1" in metrics


LABEL_TYPES = ("label", "segment", "turn")


def test_a_call_that_falls_too_far_behind_ends_with_the_reason_and_loses_nothing(tmp_path):
    """The backlog is bounded: pushes 5 s slow and two minutes of audio at once overflow it, and
    the call ends with that reason (Twilio: close 1013) instead of going on with a hole."""
    slow = Server(tmp_path, env={"RTSER_SLOW_PUSH_S": "5"})
    try:
        audio = np.zeros(8000 * 130, np.float32)  # 130 s of line silence
        with connect(slow.url("/twilio", "ws")) as ws, pytest.raises(ConnectionClosed) as closed:
            for msg in twilio_messages("CA-overflow", audio):
                ws.send(msg)
            ws.recv(timeout=60)
        assert closed.value.rcvd.code == 1013 and "behind" in closed.value.rcvd.reason
        end = slow.wait_for(lambda e: e["call"] == "CA-overflow" and e["type"] == "call_end")[0]
        assert "fell 120 s behind" in end["reason"]
        assert "rtser_dropped_audio_seconds_total 0.000" in slow.get("/metrics")
    finally:
        slow.stop()


def test_sigterm_says_goodbye_to_an_audiohook_client_as_the_protocol_goes(tmp_path, speech8k):
    s = Server(tmp_path)
    try:
        with connect(s.url("/audiohook", "ws")) as ws:
            ws.send(hook("open", 1, conversationId="conv-term", media=MONO))
            assert json.loads(ws.recv(timeout=30))["type"] == "opened"
            ws.send(mulaw(speech8k[:8000]))
            s.wait_for(lambda e: e["call"] == "conv-term" and e["type"] == "call_start")
            s.proc.send_signal(signal.SIGTERM)
            goodbye = json.loads(ws.recv(timeout=30))
            assert (
                goodbye["type"] == "disconnect" and goodbye["parameters"]["reason"] == "completed"
            )
            ws.send(hook("close", 2, reason="disconnect"))
            assert json.loads(ws.recv(timeout=30))["type"] == "closed"
        assert s.proc.wait(timeout=60) == 0
        end = s.wait_for(lambda e: e["call"] == "conv-term" and e["type"] == "call_end")[0]
        assert end["reason"] == "server shutdown"
    finally:
        s.stop()


def send_frames(ws, payload: bytes, size: int = 1600) -> None:
    """Mono PCMU in AudioHook's 200 ms binary frames."""
    for i in range(0, len(payload), size):
        ws.send(payload[i : i + size])


def test_audio_the_platform_discarded_keeps_the_events_on_the_calls_clock(server, speech8k):
    """1 s of line silence, then the client discards 3 s (AudioHook ``discarded``), then speech:
    the speech's events start after 4 s on the call's clock, as AudioHook's ``position`` says."""
    silence = np.zeros(8000, np.float32)
    with connect(server.url("/audiohook", "ws")) as ws:
        ws.send(hook("open", 1, conversationId="conv-discard", media=MONO))
        assert json.loads(ws.recv(timeout=30))["type"] == "opened"
        ws.send(mulaw(silence))
        ws.send(hook("discarded", 2, start="PT1S", discarded="PT3S"))
        payload = mulaw(speech8k)
        send_frames(ws, payload)
        ws.send(hook("close", 3, reason="end"))
        assert json.loads(ws.recv(timeout=60))["type"] == "closed"
    server.wait_for(lambda e: e["call"] == "conv-discard" and e["type"] == "call_end")
    spoken = [e for e in server.events() if e["call"] == "conv-discard" and e["type"] == "segment"]
    reference = Recognizer("de").stream(8000)
    heard = reference.push(np.concatenate([silence, g711.ulaw(payload)])) + reference.close()
    alone = [e for e in heard if e.type == "segment"]
    assert [e["start"] for e in spoken] == [round(e.start + 3, 3) for e in alone] and spoken


def test_a_language_update_labels_the_rest_of_the_call_with_that_head(server, speech8k):
    with connect(server.url("/audiohook", "ws")) as ws:
        ws.send(hook("open", 1, conversationId="conv-update", language="de-DE", media=MONO))
        assert json.loads(ws.recv(timeout=30))["type"] == "opened"
        payload = mulaw(speech8k)
        send_frames(ws, payload)
        ws.send(hook("update", 2, language="it-IT"))
        send_frames(ws, payload)
        ws.send(hook("close", 3, reason="end"))
        assert json.loads(ws.recv(timeout=60))["type"] == "closed"
    server.wait_for(lambda e: e["call"] == "conv-update" and e["type"] == "call_end")
    turns = [e for e in server.events() if e["call"] == "conv-update" and e["type"] == "turn"]
    first = len(speech8k) / 8000
    assert {e["lang"] for e in turns if e["end"] <= first} == {"de"}
    assert {e["lang"] for e in turns if e["start"] >= first} == {"it"}  # on the call's clock
    assert len(turns) == 2 * len([e for e in turns if e["end"] <= first])


@pytest.mark.parametrize("line", ["clean", "2% loss, 30 ms jitter"])
def test_streamdouble_forks_a_call_into_its_two_tracks(server, tmp_path, utterances, line):
    """Someone else's Twilio client: streamdouble simulates a <Start><Stream> fork (both tracks,
    its own G.711 encoder and pacing), on a clean line and on one that loses and delays frames
    upstream of Twilio, as a carrier's RTP leg does."""
    from streamdouble.api import call_sync
    from streamdouble.audio import wav_to_ulaw_frames
    from streamdouble.chaos import Impairments
    from streamdouble.session import SessionConfig

    customer, _ = build_call(utterances[:1], gap_s=0.6)
    agent, _ = build_call(utterances[1:2], gap_s=0.6)
    sides = {  # the agent answers once the customer has spoken
        "customer": np.pad(customer, (0, len(agent))),
        "agent": np.pad(agent, (len(customer), 0)),
    }
    paths = {side: tmp_path / f"{side}.wav" for side in sides}
    for side, audio in sides.items():
        sf.write(paths[side], resample(audio, 16000, 8000), 8000)
    impairments = Impairments(loss=0.02, jitter_ms=30) if line != "clean" else Impairments()
    config = SessionConfig(
        fork=True,
        tracks=["inbound", "outbound"],
        agent_frames=wav_to_ulaw_frames(paths["agent"]),
        impairments=impairments,
        response_timeout_s=1.0,  # rtser never speaks on a fork
        quiet_period_s=0.5,
    )
    report = call_sync(server.url("/twilio", "ws"), audio_path=paths["customer"], config=config)
    assert report.violations == [] and report.exit_code == 0
    call = report.result.identity.call_sid
    end = server.wait_for(lambda e: e["call"] == call and e["type"] == "call_end")[0]
    assert end["reason"] == "stop"
    turns = [e for e in server.events() if e["call"] == call and e["type"] == "turn"]
    assert [e["track"] for e in turns] == ["customer", "agent"]


def test_with_a_twilio_auth_token_only_signed_streams_get_in(tmp_path, speech8k):
    from websockets.exceptions import InvalidStatus

    from rtser.serve.app import twilio_signature

    s = Server(tmp_path, env={"TWILIO_AUTH_TOKEN": "twilio-token"})
    try:
        url = s.url("/twilio", "ws")
        signed = twilio_signature("twilio-token", url.replace("ws://", "wss://", 1))
        forged = twilio_signature("another-token", url.replace("ws://", "wss://", 1))
        for headers in ({}, {"X-Twilio-Signature": forged}):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, additional_headers=headers)
            assert refused.value.response.status_code == 403
        with connect(url, additional_headers={"X-Twilio-Signature": signed}) as ws:
            for msg in twilio_messages("CA-signed", speech8k[:8000]):
                ws.send(msg)
        s.wait_for(lambda e: e["call"] == "CA-signed" and e["type"] == "call_end")
        from streamdouble.api import call_sync  # someone else's client, unsigned

        with pytest.raises(InvalidStatus, match="403"):
            call_sync(url, frames=[b"\xff" * 160] * 10)
    finally:
        s.stop()
