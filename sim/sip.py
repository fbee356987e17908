"""A SIP caller for a PBX on loopback: one call over UDP, G.711 μ-law (PCMU) RTP.

It sends INVITE with an SDP offer of PCMU, ACKs the answer, streams the caller's audio in 20 ms
RTP packets at real-time pace, records what the far end sends back (what the caller hears), and
hangs up with BYE (or answers the PBX's BYE). Enough of RFC 3261 and RFC 3550 for a test call
against Asterisk's chan_pjsip; no authentication, no retransmission."""

from __future__ import annotations

import io
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from rtser.audio import g711

RATE, PACKET = 8000, 160  # PCMU: 8 kHz, 20 ms per packet
PCMU = 0


def ulaw_bytes(x: np.ndarray) -> bytes:
    """float at 8 kHz -> G.711 μ-law bytes."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), RATE, format="RAW", subtype="ULAW")
    return buf.getvalue()


@dataclass
class Dialog:
    call_id: str = field(default_factory=lambda: f"{random.getrandbits(64):x}@rtser")
    tag: str = field(default_factory=lambda: f"{random.getrandbits(32):x}")
    remote_tag: str = ""
    remote_target: str = ""
    cseq: int = 1


def _header(message: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip() if m else ""


class Caller:
    """One call from ``local`` (host, port) to ``extension`` at ``pbx``; RTP on ``rtp_port``."""

    def __init__(self, pbx=("127.0.0.1", 5060), local=("127.0.0.1", 5090), rtp_port=40000):
        self.pbx, self.local, self.rtp_port = pbx, local, rtp_port
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(local)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((local[0], rtp_port))
        self.rtp.settimeout(0.2)
        self.dialog = Dialog()
        self.heard: list[bytes] = []
        self.hung_up = threading.Event()

    def _request(self, method: str, uri: str, body: str = "", cseq: int | None = None) -> None:
        d, (host, port) = self.dialog, self.local
        to_tag = f";tag={d.remote_tag}" if d.remote_tag else ""
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{random.getrandbits(48):x};rport",
            "Max-Forwards: 70",
            f"From: <sip:caller@{host}>;tag={d.tag}",
            f"To: <{self.to}>{to_tag}",
            f"Call-ID: {d.call_id}",
            f"CSeq: {cseq or d.cseq} {method}",
            f"Contact: <sip:caller@{host}:{port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        self.sip.sendto("\r\n".join(lines).encode(), self.pbx)

    def _reply_ok(self, request: str) -> None:
        """200 OK to a request from the PBX (its BYE)."""
        keep = ("Via", "From", "To", "Call-ID", "CSeq")
        lines = ["SIP/2.0 200 OK", *(f"{h}: {_header(request, h)}" for h in keep)]
        self.sip.sendto("\r\n".join([*lines, "Content-Length: 0", "", ""]).encode(), self.pbx)

    def _response(self, timeout: float) -> str:
        self.sip.settimeout(timeout)
        while True:
            message = self.sip.recv(65535).decode(errors="replace")
            if message.startswith("SIP/2.0"):
                return message
            if message.startswith("BYE"):
                self._reply_ok(message)
                self.hung_up.set()

    def dial(self, extension: str, timeout: float = 10.0) -> None:
        """INVITE and ACK: the call is up when this returns (``RuntimeError`` if refused)."""
        host = self.local[0]
        self.to = f"sip:{extension}@{self.pbx[0]}:{self.pbx[1]}"
        sdp = "\r\n".join(
            [
                "v=0",
                f"o=- 1 1 IN IP4 {host}",
                "s=rtser",
                f"c=IN IP4 {host}",
                "t=0 0",
                f"m=audio {self.rtp_port} RTP/AVP {PCMU}",
                f"a=rtpmap:{PCMU} PCMU/8000",
                "a=ptime:20",
                "a=sendrecv",
                "",
            ]
        )
        self._request("INVITE", self.to, sdp)
        deadline = time.monotonic() + timeout
        while True:
            response = self._response(max(0.1, deadline - time.monotonic()))
            status = int(response.split()[1])
            if status >= 300:
                raise RuntimeError(f"call to {extension} refused: {response.splitlines()[0]}")
            if status == 200:
                break
        self.dialog.remote_tag = re.search(r";tag=([^;>\s]+)", _header(response, "To")).group(1)
        contact = re.search(r"<([^>]+)>", _header(response, "Contact"))
        self.dialog.remote_target = contact.group(1) if contact else self.to
        media = re.search(r"^m=audio (\d+)", response, re.MULTILINE)
        address = re.search(r"^c=IN IP4 (\S+)", response, re.MULTILINE)
        self.media_to = (address.group(1), int(media.group(1)))
        self._request("ACK", self.dialog.remote_target, cseq=1)

    def talk(self, audio: np.ndarray, tail_s: float = 1.0) -> np.ndarray:
        """Send ``audio`` (float, 8 kHz) at real-time pace while recording what comes back, then
        ``tail_s`` more of listening; returns what the caller heard (float, 8 kHz)."""
        stop = threading.Event()
        listener = threading.Thread(target=self._listen, args=(stop,), daemon=True)
        listener.start()
        payload = ulaw_bytes(np.pad(audio, (0, -len(audio) % PACKET)))
        ssrc, start = random.getrandbits(32), time.monotonic()
        for i in range(len(payload) // PACKET):
            if self.hung_up.is_set():
                break
            header = bytes([0x80, PCMU]) + (i & 0xFFFF).to_bytes(2, "big")
            header += (i * PACKET & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            self.rtp.sendto(header + payload[i * PACKET : (i + 1) * PACKET], self.media_to)
            time.sleep(max(0.0, start + (i + 1) * PACKET / RATE - time.monotonic()))
        time.sleep(tail_s)
        stop.set()
        listener.join()
        return g711.ulaw(b"".join(self.heard)) if self.heard else np.zeros(0, np.float32)

    def _listen(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                packet = self.rtp.recv(2048)
            except TimeoutError:
                continue
            if len(packet) > 12 and packet[1] & 0x7F == PCMU:
                self.heard.append(packet[12:])

    def hang_up(self, timeout: float = 5.0) -> None:
        if not self.hung_up.is_set():
            self.dialog.cseq += 1
            self._request("BYE", self.dialog.remote_target)
            try:
                self._response(timeout)
            except TimeoutError:
                pass
        self.sip.close()
        self.rtp.close()
