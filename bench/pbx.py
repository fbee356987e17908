"""A real Asterisk in front of ``rtser serve`` -> docs/benchmarks.md (section "pbx").

    python bench/pbx.py [--root /opt/pbx-root] [--calls 4] [--seed 12345]

Asterisk 22 from Debian's unstable suite (its libc is newer than this machine's, so it runs in a
``debootstrap`` chroot at ``--root``; made on the first run from the mirror apt uses here: about 3
min and 650 MB; needs root). A SIP caller (``sim/sip.py``: PCMU over RTP) calls ``chan_pjsip``:

- the two dialplan snippets of docs/callcenter.md, verbatim (``AudioSocket()`` on 100, ``Dial``
  of the AudioSocket channel with ``c(slin16)`` on 200), and ``Dial`` without ``c()`` on 201;
- ``--calls`` calls tapped passively by ``deploy/asterisk/tap.py`` (ARI snoop channels bridged to
  ``externalMedia`` AudioSocket channels): the caller talks, the "agent" is a prompt Asterisk
  plays to the caller, and rtser gets both as two tracks of one call.

The customer's and the agent's speech are held-out clips (fold 0 of ``train.data.fold_indices``)
of ``--corpus``, in calls built by ``sim/calls.py``. A recording proxy between Asterisk and rtser
keeps the audio rtser received, frame by frame; per track, the server's segments and turns are
compared with ``Recognizer.stream`` on that audio (``rtser file``'s path). The caller records
what it hears: the tap must leave the agent's voice in the call.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser import Recognizer  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.audio.resample import resample  # noqa: E402
from rtser.serve.audiosocket import RATES, uuid_text  # noqa: E402
from rtser.serve.protocol import l16  # noqa: E402
from sim import calls as linesim  # noqa: E402
from sim.sip import Caller  # noqa: E402
from train import data  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402

LANG = {"emodb": "de", "emovo": "it", "ravdess": "en", "urdu": "ur"}
MIRROR = "http://deb.debian.org/debian"
ETC = "/etc/asterisk-rtser"  # this benchmark's configuration, beside the package's own
SOUNDS = "/var/lib/asterisk/sounds"
SIP_PORT, ARI_PORT = 5080, 8088
AUDIOSOCKET = {"caller": 9092, "agent": 9093}  # what the snippets and the tap dial: the proxy
FRAME_S = 0.032  # one Silero VAD frame: how close the server's segments must be to the file's
# modules for hardware, other protocols and services this call path does not use
MODULES_OFF = (
    "chan_iax2", "chan_dahdi", "chan_mobile", "chan_console", "chan_alsa", "chan_oss", "res_hep",
    "res_hep_pjsip", "res_hep_rtcp", "cdr_radius", "cel_radius", "res_config_ldap",
    "res_pjsip_outbound_registration",
)  # fmt: skip


def sh(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kw)


def ensure_root(root: Path) -> None:
    """Debian unstable with Asterisk, in a chroot (once)."""
    if (root / "usr/sbin/asterisk").exists():
        return
    print(f"building the chroot at {root} (about 3 min, 650 MB)", flush=True)
    sh("debootstrap", "--variant=minbase", "sid", str(root), MIRROR, stdout=subprocess.DEVNULL)
    # the suite's Release file may be past its Valid-Until on a machine with a late clock
    apt = "apt-get -o Acquire::Check-Valid-Until=false"
    sh(
        "chroot",
        str(root),
        "sh",
        "-c",
        f"{apt} update -qq && DEBIAN_FRONTEND=noninteractive {apt} install -y -qq "
        "--no-install-recommends asterisk asterisk-modules",
        stdout=subprocess.DEVNULL,
    )


def mount(root: Path) -> None:
    for target, args in (("dev", ["--bind", "/dev"]), ("proc", ["-t", "proc", "proc"])):
        if not os.path.ismount(root / target):
            sh("mount", *args, str(root / target))


def snippets() -> str:
    """The dialplan of docs/callcenter.md's Asterisk section, as it is written there."""
    text = (ROOT / "docs" / "callcenter.md").read_text(encoding="utf-8")
    section = text[text.index("## Asterisk AudioSocket") :]
    return re.search(r"```\n(.*?)```", section, re.DOTALL).group(1)


def configure(root: Path, password: str) -> None:
    etc = root / ETC.lstrip("/")
    shutil.rmtree(etc, ignore_errors=True)
    etc.mkdir(parents=True)
    files = {
        "asterisk.conf": f"""[directories]
astetcdir => {ETC}
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => /var/lib/asterisk
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => /var/spool/asterisk
astrundir => /var/run/asterisk
astlogdir => /var/log/asterisk
""",
        "modules.conf": "[modules]\nautoload = yes\n"
        + "".join(f"noload = {m}.so\n" for m in MODULES_OFF),
        "logger.conf": "[logfiles]\nconsole => notice,warning,error\n",
        "http.conf": f"[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = {ARI_PORT}\n",
        "ari.conf": f"[general]\nenabled = yes\n[rtser]\ntype = user\npassword = {password}\n",
        "rtp.conf": "[general]\nrtpstart = 31000\nrtpend = 31200\n",
        "pjsip.conf": f"""[udp]
type = transport
protocol = udp
bind = 127.0.0.1:{SIP_PORT}

[caller]
type = endpoint
context = calls
disallow = all
allow = ulaw
direct_media = no

[caller]
type = identify
endpoint = caller
match = 127.0.0.1
""",
        "extensions.conf": "[calls]\n"
        + snippets()
        + f"""
; without c(): Asterisk forwards the caller's μ-law labelled as slin
exten => 201,1,Dial(AudioSocket/rtser.internal:{AUDIOSOCKET["caller"]}/${{UUID()}})

; the passive tap: deploy/asterisk/tap.py snoops on the channel, then the call goes on (the
; "agent" here is a prompt played to the caller)
exten => _3XX,1,Answer()
 same => n,Stasis(rtser-tap)
 same => n,Playback({SOUNDS}/rtser-agent-${{EXTEN}})
 same => n,Hangup()
""",
    }
    for name, text in files.items():
        (etc / name).write_text(text)
    # no DNS here: Asterisk looks up its host name and a root server at start and on each call
    (root / "etc/hosts").write_text(
        f"127.0.0.1 localhost rtser.internal A.ROOT-SERVERS.NET {socket.gethostname()}\n"
    )


class Recorder:
    """An AudioSocket proxy on the ports Asterisk dials, in front of rtser's: it passes every byte
    on and keeps the audio frames of each connection, keyed by (track, UUID)."""

    def __init__(self, upstream: dict[str, int]):
        self.upstream = upstream
        self.audio: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        for track, port in AUDIOSOCKET.items():
            self.loop.run_until_complete(
                asyncio.start_server(lambda r, w, t=track: self._relay(r, w, t), "127.0.0.1", port)
            )
        self.ready.set()
        self.loop.run_forever()

    async def _relay(self, reader, writer, track: str) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream[track])

        async def back() -> None:  # rtser's hang-up frame, if it refuses the call
            while data_ := await up_reader.read(4096):
                writer.write(data_)
            writer.close()

        answer = asyncio.ensure_future(back())
        key = None
        try:
            while True:
                head = await reader.readexactly(3)
                payload = await reader.readexactly(int.from_bytes(head[1:], "big"))
                up_writer.write(head + payload)
                if head[0] == 0x01:
                    key = (track, uuid_text(payload))
                    self.audio[key] = []
                elif key and 0x10 <= head[0] <= 0x18:
                    self.audio[key].append((head[0], payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        up_writer.close()
        await answer


def received(frames: list[tuple[int, bytes]]) -> tuple[np.ndarray, int]:
    """A connection's audio frames as rtser decodes them, and their rate."""
    return l16(b"".join(p for _, p in frames)), RATES[frames[0][0]]


def offline(rec: Recognizer, audio: np.ndarray, rate: int) -> list[tuple[str, float, float]]:
    """The segments and turns of ``rtser file`` on the received audio."""
    session = rec.stream(rate)
    events = session.push(audio) + session.close()
    return [(e.type, e.start, e.end) for e in events if e.type in ("segment", "turn")]


def compare(server: list, local: list) -> dict:
    same = [a[0] == b[0] for a, b in zip(server, local)]
    gaps = [max(abs(a[1] - b[1]), abs(a[2] - b[2])) for a, b in zip(server, local)]
    return {
        "server": len(server),
        "file": len(local),
        "equal": len(server) == len(local) and all(same) and max(gaps, default=0) <= FRAME_S,
        "max_gap": max(gaps, default=0.0),
    }


def wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def answers(url: str, password: str | None = None) -> bool:
    """Whether an HTTP server answers ``url`` (with ARI's basic auth when given a password)."""
    request = urllib.request.Request(url)
    if password:
        auth = base64.b64encode(f"rtser:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {auth}")
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speech_s(x: np.ndarray, sr: int) -> float:
    """Seconds of 20 ms frames above -40 dBFS."""
    n = sr // 50
    frames = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
    return float(((frames**2).mean(axis=1) > 1e-4).sum() * 0.02)


def run(args, tmp: Path) -> list[dict]:
    corpus, lang = args.corpus, LANG[args.corpus]
    items = data.clips(corpus)
    _, test = data.fold_indices([c.speaker for c in items])[0]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(test)
    clips = [(load(items[i].path), items[i].label) for i in order]

    def built(k: int, n: int = 4) -> np.ndarray:
        call, _ = linesim.build_call(clips[k * n : (k + 1) * n], rng)
        return resample(call, linesim.SR, 8000)

    password = secrets.token_hex(8)
    configure(args.root, password)
    events_file = tmp / "events.jsonl"
    upstream = {"caller": free_port(), "agent": free_port()}
    plan = [
        {"extension": "100", "what": "AudioSocket() (docs, verbatim)", "customer": built(0)},
        {"extension": "200", "what": "Dial(…/c(slin16)) (docs, verbatim)", "customer": built(1)},
        {"extension": "201", "what": "Dial(…) without c()", "customer": built(2)},
    ]
    for i in range(args.calls):
        extension, agent = f"3{i:02d}", built(4 + 2 * i)
        plan.append(
            {
                "extension": extension,
                "what": "passive tap (ARI snoop → externalMedia)",
                "customer": built(3 + 2 * i),
                "agent": agent,
            }
        )
        # the prompt outlasts the caller's speech: the caller hangs up, as a customer would
        prompt = np.concatenate([agent, np.zeros(8000 * 5, np.float32)])
        sf.write(args.root / SOUNDS.lstrip("/") / f"rtser-agent-{extension}.wav", prompt, 8000)
    procs = []
    log = open(tmp / "processes.log", "w")  # noqa: SIM115 (closed below)
    try:
        procs.append(
            subprocess.Popen(
                ["chroot", str(args.root), "asterisk", "-f", "-C", f"{ETC}/asterisk.conf"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        ari = f"http://127.0.0.1:{ARI_PORT}/ari/asterisk/info"
        wait(lambda: answers(ari, password), 60, "Asterisk's ARI")
        recorder, http = Recorder(upstream), free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rtser",
                    "serve",
                    "--lang",
                    lang,
                    "--port",
                    str(http),
                    "--audiosocket-port",
                    str(upstream["caller"]),
                    "--audiosocket-agent-port",
                    str(upstream["agent"]),
                    "--events",
                    str(events_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
        wait(lambda: answers(f"http://127.0.0.1:{http}/healthz"), 120, "rtser serve")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "deploy/asterisk/tap.py"),
                    "--user",
                    "rtser",
                    "--password",
                    password,
                    "--port",
                    str(AUDIOSOCKET["caller"]),
                    "--agent-port",
                    str(AUDIOSOCKET["agent"]),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
        time.sleep(2)
        rec = Recognizer(lang)
        rows = []
        for i, call in enumerate(plan):
            before = set(recorder.audio)
            caller = Caller(("127.0.0.1", SIP_PORT), ("127.0.0.1", 5090 + i), 40000 + 10 * i)
            caller.dial(call["extension"])
            heard = caller.talk(call["customer"], tail_s=1.5)
            caller.hang_up()
            keys = wait(lambda b=before: set(recorder.audio) - b, 10, "the call's audio")
            uuids = {u for _, u in keys}

            def ends(u=uuids):
                events = [json.loads(x) for x in events_file.read_text().splitlines()]
                mine = [e for e in events if e["call"] in u]
                return mine if any(e["type"] == "call_end" for e in mine) else None

            events = wait(ends, 30, "call_end")
            end = next(e for e in events if e["type"] == "call_end")
            tracks = {}
            for track, call_uuid in sorted(keys):
                server = [
                    (e["type"], e["start"], e["end"])
                    for e in events
                    if e["track"] == track and e["type"] in ("segment", "turn")
                ]
                frames = recorder.audio[(track, call_uuid)]
                audio, rate = received(frames) if frames else (np.zeros(0, np.float32), 0)
                tracks[track] = {
                    "rate": rate,
                    "seconds": len(audio) / rate if rate else 0.0,
                    **compare(server, offline(rec, audio, rate) if rate else []),
                }
            row = {
                "extension": call["extension"],
                "what": call["what"],
                "tracks": tracks,
                "reason": end["reason"],
                "heard_s": speech_s(heard, 8000),
                "agent_s": speech_s(call["agent"], 8000) if "agent" in call else 0.0,
            }
            rows.append(row)
            print(row, flush=True)
        return rows
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def report(rows: list[dict], args, seconds: float) -> str:
    lines = [
        "## A real Asterisk (`python bench/pbx.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}. Asterisk 22 (Debian unstable, in a chroot) "
        "with `chan_pjsip`; a SIP caller (`sim/sip.py`, PCMU) speaks held-out clips of "
        f"{args.corpus} (fold 0), built into calls by `sim/calls.py`, into `rtser serve --lang "
        f"{LANG[args.corpus]}`. Each track's segments and turns are compared with `rtser file` "
        "on the audio rtser received (kept by a proxy between Asterisk and rtser), within one "
        f"VAD frame ({FRAME_S * 1000:.0f} ms). {seconds / 60:.0f} min to run.",
        "",
        "| dialplan | track (rate) | audio received (s) | segments + turns: server / file | "
        "equal within a frame | caller hears (s of speech) | call_end reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        heard = f"{row['heard_s']:.1f}"
        if row["agent_s"]:
            heard += f" of the agent's {row['agent_s']:.1f}"
        for track, t in row["tracks"].items():
            lines.append(
                f"| {row['extension']}: {row['what']} | {track} ({t['rate'] // 1000} kHz) | "
                f"{t['seconds']:.1f} | {t['server']} / {t['file']} | "
                f"{'yes' if t['equal'] else 'no'} (max {t['max_gap'] * 1000:.0f} ms) | {heard} | "
                f"{row['reason']} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", type=Path, default=Path("/opt/pbx-root"))
    ap.add_argument("--calls", type=int, default=4, help="passively tapped calls")
    ap.add_argument("--corpus", default="emodb", choices=sorted(LANG))
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    t0 = time.time()
    ensure_root(args.root)
    mount(args.root)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args, Path(tmp))
    write_section(args.out, "pbx", report(rows, args, time.time() - t0))


if __name__ == "__main__":
    main()
