"""Overload of `rtser serve` -> docs/benchmarks.md (section "serve").

    python bench/serve.py [--load 0.5 1 2 3] [--seconds 30] [--gaps 0.05 0.3] [--seed 12345]

The server runs with its defaults (`--max-calls auto`, `--latency-budget 1`, `--threads 2`). First
it is warmed with a few calls and asked for its capacity estimate (`rtser_capacity_calls`); then,
on a fresh server per step, ``--load`` times that many calls are offered, one every 0.1 s, each
for ``--seconds`` at real-time pace over loopback: half Genesys AudioHook (stereo PCMU, 200 ms
frames, a ping every 5 s), half Twilio Media Streams (inbound + outbound μ-law, 20 ms messages).
Each side of a call is real corpus speech with pauses of ``--gaps`` seconds (continuous speech,
the heaviest load). Per step: calls admitted and refused (AudioHook disconnect, Twilio close), the
admitted calls' event latency (a /v1/events subscriber's arrival minus the moment the client sent
the audio the event's ``end`` lies in), the audio dropped (/metrics), and AudioHook's ping-to-pong
delay.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser.audio import load  # noqa: E402
from rtser.audio.resample import resample  # noqa: E402
from sim import calls as linesim  # noqa: E402
from train import data  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def side(seconds: float, rng, pool, gaps: tuple[float, float]) -> bytes:
    """One side of a call: μ-law 8 kHz bytes of real utterances with pauses."""
    clips = []
    while sum(len(x) for x, _ in clips) < seconds * 16000:
        c = pool[rng.integers(len(pool))]
        clips.append((load(c.path), c.label))
    audio, _ = linesim.build_call(clips, rng, gap=gaps)
    audio = np.pad(audio, (0, max(0, int(seconds * 16000) - len(audio))))[: int(seconds * 16000)]
    narrow = resample(audio, 16000, 8000)[: int(seconds * 8000)]
    buf = io.BytesIO()
    sf.write(buf, np.clip(narrow, -1, 1), 8000, format="RAW", subtype="ULAW")
    return buf.getvalue()


async def twilio_call(url, call_id, inbound, outbound, sent, pongs) -> bool:
    """Whether the call was admitted (a refused one is closed by the server)."""
    async with connect(url) as ws:
        start = {
            "callSid": call_id,
            "tracks": ["inbound", "outbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(json.dumps({"event": "start", "start": start}))
        t0 = time.monotonic()
        for n, i in enumerate(range(0, min(len(inbound), len(outbound)), 160)):
            await asyncio.sleep(max(0.0, t0 + n * 0.02 - time.monotonic()))
            if ws.close_code is not None:
                return False
            for track, audio in (("inbound", inbound), ("outbound", outbound)):
                await ws.send(
                    json.dumps(
                        {
                            "event": "media",
                            "media": {
                                "track": track,
                                "payload": base64.b64encode(audio[i : i + 160]).decode(),
                            },
                        }
                    )
                )
            sent.append(((i + 160) / 8000, time.monotonic()))
        await ws.send(json.dumps({"event": "stop"}))
        return True


async def audiohook_call(url, call_id, external, internal, sent, pongs) -> bool:
    """Whether the call was admitted (a refused one gets ``disconnect``: it closes, as the
    protocol goes); a ping every 5 s, its pong's delay into ``pongs``."""
    stereo = (
        np.stack([np.frombuffer(external, np.uint8), np.frombuffer(internal, np.uint8)], 1)
        .reshape(-1)
        .tobytes()
    )
    async with connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": call_id,
                    "type": "open",
                    "seq": 1,
                    "parameters": {
                        "conversationId": call_id,
                        "media": [
                            {
                                "type": "audio",
                                "format": "PCMU",
                                "channels": ["external", "internal"],
                                "rate": 8000,
                            }
                        ],
                    },
                }
            )
        )
        if json.loads(await ws.recv())["type"] == "disconnect":
            close = {"version": "2", "id": call_id, "type": "close", "seq": 2, "parameters": {}}
            await ws.send(json.dumps(close))
            await ws.recv()  # closed
            return False
        pinged: dict[int, float] = {}

        async def read():
            async for text in ws:
                msg = json.loads(text)
                if msg["type"] == "pong":
                    pongs.append(time.monotonic() - pinged[msg["clientseq"]])
                elif msg["type"] == "closed":
                    return

        reader = asyncio.create_task(read())
        t0, seq = time.monotonic(), 1
        for n, i in enumerate(range(0, len(stereo), 3200)):  # 200 ms of two channels
            await asyncio.sleep(max(0.0, t0 + n * 0.2 - time.monotonic()))
            await ws.send(stereo[i : i + 3200])
            sent.append(((i + 3200) / 16000, time.monotonic()))
            if n % 25 == 24:  # every 5 s
                seq += 1
                pinged[seq] = time.monotonic()
                ping = {"version": "2", "id": call_id, "type": "ping", "seq": seq, "parameters": {}}
                await ws.send(json.dumps(ping))
        close = {"version": "2", "id": call_id, "type": "close", "seq": seq + 1, "parameters": {}}
        await ws.send(json.dumps(close))
        await reader
        return True


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        lines = r.read().decode().splitlines()
    return float(next(line.split()[1] for line in lines if line.startswith(name + " ")))


async def load_test(port: int, n: int, seconds: float, rng, pool, gaps) -> dict:
    """``n`` calls offered one every 0.1 s; what was admitted, and how the admitted calls fared."""
    base = f"ws://127.0.0.1:{port}"
    sides = [(side(seconds, rng, pool, gaps), side(seconds, rng, pool, gaps)) for _ in range(n)]
    sent = {f"call-{n}-{k}": [] for k in range(n)}
    arrivals, pongs = [], []

    async def subscribe(ready):
        async with connect(f"{base}/v1/events") as ws:
            ready.set()
            async for text in ws:
                e = json.loads(text)
                arrivals.append((e, time.monotonic()))
                if sum(a[0]["type"] in ("call_end", "call_rejected") for a in arrivals) == n:
                    return

    async def offer(k, cid, a, b):
        await asyncio.sleep(0.1 * k)
        call = twilio_call if k % 2 else audiohook_call
        url = f"{base}/twilio" if k % 2 else f"{base}/audiohook"
        try:
            return await call(url, cid, a, b, sent[cid], pongs)
        except ConnectionClosed:  # refused while sending
            return False

    ready = asyncio.Event()
    feed = asyncio.create_task(subscribe(ready))
    await ready.wait()
    admitted = await asyncio.gather(
        *(offer(k, cid, a, b) for k, (cid, (a, b)) in enumerate(zip(sent, sides)))
    )
    await asyncio.wait_for(feed, 300)
    lat = []
    for e, arrived in arrivals:
        # the provisional events: a turn's final comes a turn gap after its speech by design
        if e["type"] in ("label", "segment") and sent[e["call"]]:
            times = sent[e["call"]]
            at = next((t for pos, t in times if pos >= e["end"]), times[-1][1])
            lat.append(arrived - at)
    pct = lambda xs, q: float(np.percentile(xs, q)) if xs else float("nan")
    return {
        "offered": n,
        "admitted": int(sum(admitted)),
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "dropped_s": metric(port, "rtser_dropped_audio_seconds_total"),
        "ping_p95": pct(pongs, 95),
        "ping_max": max(pongs, default=float("nan")),
    }


def serving(run):
    """``run(port)`` against a fresh `rtser serve` with its defaults."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtser", "serve", "--lang", "en", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").close()
                break
            except OSError:
                time.sleep(0.1)
        return run(port)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--load", type=float, nargs="+", default=[0.5, 1, 2, 3])
    ap.add_argument(
        "--gaps", type=float, nargs=2, default=[0.05, 0.3], help="pause between utterances, s"
    )
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    pool = [c for corpus in data.corpora() for c in data.clips(corpus)]
    gaps = tuple(args.gaps)

    def warm(port):
        asyncio.run(load_test(port, 4, 10, np.random.default_rng(args.seed), pool, gaps))
        return int(metric(port, "rtser_capacity_calls"))

    capacity = serving(warm)
    print("capacity estimate", capacity, flush=True)
    rows = []
    for k in args.load:  # a fresh server per step: its admissions and drops are that step's
        n = max(1, round(k * capacity))
        rng = np.random.default_rng([args.seed, n])
        rows.append(
            {
                "load": k,
                **serving(
                    lambda port: asyncio.run(load_test(port, n, args.seconds, rng, pool, gaps))
                ),
            }
        )
        print(rows[-1], flush=True)
    lines = [
        "## `rtser serve` under overload (`python bench/serve.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}. `rtser serve --lang en` with its defaults "
        "(`--max-calls auto`, `--latency-budget 1`, `--threads 2`); its capacity estimate after "
        f"4 warm-up calls: **{capacity} calls**. Each step offers a multiple of it, one call "
        f"every 0.1 s, each {args.seconds:g} s at real-time pace over loopback: half AudioHook "
        "stereo (a ping every 5 s), half Twilio with both tracks; real corpus speech with "
        f"{args.gaps[0]:g}–{args.gaps[1]:g} s pauses on every leg. The clients run on the same "
        "2 cores. Latency: the admitted calls' rolling labels and provisional segments, arrival "
        "on /v1/events minus the moment the audio their `end` lies in was sent.",
        "",
        "| offered (× capacity) | admitted | refused | latency p50 / p95 (s) | dropped audio (s) "
        "| ping → pong p95 / max (s) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['offered']} ({r['load']:g}×) | {r['admitted']} | {r['offered'] - r['admitted']} | "
        f"{r['p50']:.2f} / {r['p95']:.2f} | {r['dropped_s']:.1f} | "
        f"{r['ping_p95']:.3f} / {r['ping_max']:.3f} |"
        for r in rows
    ]
    write_section(args.out, "serve", "\n".join(lines))


if __name__ == "__main__":
    main()
