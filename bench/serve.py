"""Load test of `rtser serve` -> docs/benchmarks.md (section "serve").

    python bench/serve.py [--calls 5 10 20 24] [--seconds 40] [--gaps 0.05 0.3] [--seed 12345]

For each N, N calls at once over loopback at real-time pace: half Genesys AudioHook (stereo PCMU,
200 ms frames), half Twilio Media Streams (inbound + outbound μ-law, 20 ms messages). Each side of a
call is real corpus speech (all four corpora) with pauses of ``--gaps`` seconds (default 0.05–0.3 s:
continuous speech, the heaviest load). A /v1/events subscriber timestamps
every event; latency = its arrival minus the moment the client sent the audio its ``end`` lies in.
CPU = the server process's CPU seconds / wall seconds (100 % = one core); dropped audio from
/metrics. The server runs with its defaults (`--threads 2`).
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


async def twilio_call(url, call_id, inbound, outbound, sent) -> None:
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


async def audiohook_call(url, call_id, external, internal, sent) -> None:
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
        await ws.recv()
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(stereo), 3200)):  # 200 ms of two channels
            await asyncio.sleep(max(0.0, t0 + n * 0.2 - time.monotonic()))
            await ws.send(stereo[i : i + 3200])
            sent.append(((i + 3200) / 16000, time.monotonic()))
        await ws.send(
            json.dumps({"version": "2", "id": call_id, "type": "close", "seq": 2, "parameters": {}})
        )
        await ws.recv()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime in clock ticks (100 Hz)


async def load_test(port: int, n: int, seconds: float, rng, pool, pid: int, gaps) -> dict:
    base = f"ws://127.0.0.1:{port}"
    sides = [(side(seconds, rng, pool, gaps), side(seconds, rng, pool, gaps)) for _ in range(n)]
    sent = {f"call-{n}-{k}": [] for k in range(n)}
    arrivals = []

    async def subscribe(ready):
        async with connect(f"{base}/v1/events") as ws:
            ready.set()
            async for text in ws:
                e = json.loads(text)
                arrivals.append((e, time.monotonic()))
                if (
                    e["type"] == "call_end"
                    and sum(a[0]["type"] == "call_end" for a in arrivals) == n
                ):
                    return

    ready = asyncio.Event()
    feed = asyncio.create_task(subscribe(ready))
    await ready.wait()
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(
        *(
            (
                twilio_call(f"{base}/twilio", cid, a, b, sent[cid])
                if k % 2
                else audiohook_call(f"{base}/audiohook", cid, a, b, sent[cid])
            )
            for k, (cid, (a, b)) in enumerate(zip(sent, sides))
        )
    )
    await asyncio.wait_for(feed, 120)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
    lat = []
    for e, arrived in arrivals:
        if e["type"] in ("label", "segment"):
            times = sent[e["call"]]
            at = next((t for pos, t in times if pos >= e["end"]), times[-1][1])
            lat.append(arrived - at)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        dropped = float(
            next(
                line.split()[1]
                for line in r.read().decode().splitlines()
                if line.startswith("rtser_dropped_audio_seconds_total")
            )
        )
    return {
        "calls": n,
        "events": len(lat),
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "cpu": cpu,
        "dropped_s": dropped,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, nargs="+", default=[5, 10, 20, 24])
    ap.add_argument(
        "--gaps", type=float, nargs=2, default=[0.05, 0.3], help="pause between utterances, s"
    )
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    pool = [c for corpus in data.corpora() for c in data.clips(corpus)]
    rows = []
    for n in args.calls:  # a fresh server per N: dropped audio and CPU are that run's alone
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
            rows.append(
                asyncio.run(
                    load_test(
                        port,
                        n,
                        args.seconds,
                        np.random.default_rng([args.seed, n]),
                        pool,
                        proc.pid,
                        tuple(args.gaps),
                    )
                )
            )
            print(rows[-1], flush=True)
        finally:
            proc.terminate()
            proc.wait()
    ok = [r["calls"] for r in rows if r["p95"] <= 1.0 and r["dropped_s"] == 0]
    lines = [
        "## `rtser serve` under load (`python bench/serve.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}. N calls at once for {args.seconds:g} s each, "
        "real-time pace over loopback, half AudioHook stereo and half Twilio (both tracks), so 2N "
        f"legs; real corpus speech with {args.gaps[0]:g}–{args.gaps[1]:g} s pauses on every leg; "
        "`rtser serve --lang en` with its defaults. Latency: event arrival on "
        "/v1/events minus the moment the audio its `end` lies in was sent.",
        "",
        "| calls (legs) | events | latency p50 / p95 (s) | server CPU (1 core = 100 %) | dropped "
        "audio (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['calls']} ({2 * r['calls']}) | {r['events']} | {r['p50']:.2f} / {r['p95']:.2f} | "
        f"{100 * r['cpu']:.0f} % | {r['dropped_s']:.1f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Largest N measured with p95 ≤ 1 s and no dropped audio: {max(ok) if ok else 'none'} "
        "calls "
        f"({2 * max(ok) if ok else 0} legs).",
    ]
    write_section(args.out, "serve", "\n".join(lines))


if __name__ == "__main__":
    main()
