"""Genesys AudioHook v2, monitor mode: open/opened, ping/pong, close/closed, binary audio (PCMU or
L16, 8 or 16 kHz, channels interleaved: external = customer, internal = agent)."""

from __future__ import annotations

import json

from websockets.exceptions import ConnectionClosed

from ..audio import g711
from .hub import CallRefused, Hub, Track
from .protocol import ProtocolError, end_call, end_reason, l16, parse_json

TRACKS = {"external": Track.CUSTOMER, "internal": Track.AGENT}
IGNORED = {"paused", "resumed", "discarded", "update", "error"}
PROBE = "00000000-0000-0000-0000-000000000000"  # the conversation id of a connection probe
FORMATS, RATES = ("PCMU", "L16"), (8000, 16000)


class Session:
    """The server's side of one AudioHook connection: message ids, sequence numbers, media."""

    def __init__(self, ws):
        self.ws = ws
        self.id = None
        self.seq = 0
        self.clientseq = 0
        self.encoding, self.rate = "PCMU", 8000
        self.tracks: tuple[Track, ...] = ()

    def received(self, msg: dict) -> None:
        self.id = msg.get("id", self.id)
        self.clientseq = msg.get("seq", self.clientseq)

    async def send(self, kind: str, parameters: dict) -> None:
        self.seq += 1
        message = {"version": "2", "id": self.id, "type": kind, "seq": self.seq}
        await self.ws.send(
            json.dumps({**message, "clientseq": self.clientseq, "parameters": parameters})
        )

    def decode(self, frame: bytes):
        """A binary frame -> ``(frames, len(tracks))`` float32."""
        pcm = g711.ulaw(frame) if self.encoding == "PCMU" else l16(frame)
        if len(pcm) % len(self.tracks):
            raise ProtocolError(
                f"an audio frame that does not split into {len(self.tracks)} channels"
            )
        return pcm.reshape(-1, len(self.tracks))


def media_offer(params: dict) -> dict:
    """The first media offer rtser can take, or ``ProtocolError``."""
    for m in params.get("media") or []:
        channels = m.get("channels")
        if (
            m.get("format") in FORMATS
            and m.get("rate") in RATES
            and channels
            and set(channels) <= set(TRACKS)
        ):
            return m
    raise ProtocolError("open offers no PCMU/L16 media at 8 or 16 kHz")


async def handle(ws, hub: Hub) -> None:
    call, reason, error = None, "close", False
    session = Session(ws)
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                if call is None:
                    raise ProtocolError("audio before open")
                call.push(session.tracks, session.decode(frame), session.rate)
                continue
            msg = parse_json(frame)
            session.received(msg)
            kind = msg.get("type")
            if kind == "open":
                params = msg.get("parameters") or {}
                offer = media_offer(params)
                if (
                    params.get("conversationId") == PROBE
                ):  # a connection probe: answer, start no call
                    await session.send("opened", {"media": [offer], "startPaused": False})
                    continue
                if not params.get("conversationId"):
                    raise ProtocolError("open without conversationId")
                lang = (params.get("language") or "").split("-")[0].lower() or None
                try:
                    call = hub.open_call(params["conversationId"], lang, "audiohook")
                except CallRefused as e:
                    await session.send("disconnect", {"reason": "error", "info": str(e)})
                    return
                session.encoding, session.rate = offer["format"], offer["rate"]
                session.tracks = tuple(TRACKS[name] for name in offer["channels"])
                await session.send("opened", {"media": [offer], "startPaused": False})
            elif kind == "ping":
                await session.send("pong", {})
            elif kind == "close":
                await session.send("closed", {})
                break
            elif kind not in IGNORED:
                raise ProtocolError(f"unknown message type {kind!r}")
    except Exception as e:
        reason, error = end_reason(e)
        if error:
            try:
                await session.send("disconnect", {"reason": "error", "info": reason})
            except ConnectionClosed:
                pass
    await end_call(call, reason, error)
