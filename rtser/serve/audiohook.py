"""Genesys AudioHook v2, monitor mode: open/opened, ping/pong, close/closed, binary audio (PCMU or
L16, 8 or 16 kHz, channels interleaved: external = customer, internal = agent)."""

from __future__ import annotations

import asyncio
import json
import re

from websockets.exceptions import ConnectionClosed

from ..audio import g711
from .hub import CallRefused, Hub, Track
from .protocol import ProtocolError, end_call, end_reason, l16, log, parse_json

TRACKS = {"external": Track.CUSTOMER, "internal": Track.AGENT}
IGNORED = {"paused", "error"}
LOST = {"discarded", "resumed"}  # the client says how much audio it did not send
DURATION = re.compile(r"PT(\d+(?:\.\d+)?)S")  # AudioHook's ISO 8601 durations, in seconds
PROBE = "00000000-0000-0000-0000-000000000000"  # the conversation id of a connection probe
FORMATS, RATES = ("PCMU", "L16"), (8000, 16000)
CLOSE_WAIT_S = 5.0  # after our disconnect, how long the client's close is awaited


class Session:
    """The server's side of one AudioHook connection: message ids, sequence numbers, media."""

    def __init__(self, ws):
        self.ws = ws
        self.id = ws.request.headers.get("Audiohook-Session-Id")  # until open says it
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


def opened(offer: dict, params: dict, hub: Hub) -> dict:
    """``opened``'s parameters: the media taken, and the languages rtser has a head for when the
    client asks for them (``supportedLanguages``)."""
    answer = {"media": [offer], "startPaused": False}
    if params.get("supportedLanguages"):
        answer["supportedLanguages"] = [lang for lang in hub.bundle.languages if lang != "any"]
    return answer


async def disconnect(session: Session, ws, parameters: dict) -> None:
    """Say why the server ends the session, then wait for the client's ``close`` and answer
    ``closed``, as the protocol's handshake goes (a client that never closes is left after
    ``CLOSE_WAIT_S``)."""

    async def closed() -> None:
        async for frame in ws:  # audio still in flight is dropped
            if isinstance(frame, str) and (msg := parse_json(frame)).get("type") == "close":
                session.received(msg)
                await session.send("closed", {})
                return

    try:
        await session.send("disconnect", parameters)
        await asyncio.wait_for(closed(), CLOSE_WAIT_S)
    except (ConnectionClosed, asyncio.TimeoutError, ProtocolError):
        pass


async def unauthorized(ws) -> None:
    """Refuse a connection whose request signature does not verify."""
    await disconnect(Session(ws), ws, {"reason": "unauthorized"})


async def handle(ws, hub: Hub) -> None:
    call, reason, error, probe = None, "close", False, False
    session = Session(ws)

    async def goodbye() -> None:  # SIGTERM: the loop below answers the client's close
        nonlocal reason
        reason = "server shutdown"
        await session.send("disconnect", {"reason": "completed", "info": "server shutting down"})

    hub.goodbyes.add(goodbye)
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                if call is not None:
                    call.push(session.tracks, session.decode(frame), session.rate)
                elif not probe:  # a probe may send a frame of audio after opened: it is dropped
                    raise ProtocolError("audio before open")
                continue
            msg = parse_json(frame)
            session.received(msg)
            kind = msg.get("type")
            if kind == "open":
                params = msg.get("parameters") or {}
                offer = media_offer(params)
                if params.get("conversationId") == PROBE:  # a connection probe: no call
                    probe = True
                    await session.send("opened", opened(offer, params, hub))
                    continue
                if not params.get("conversationId"):
                    raise ProtocolError("open without conversationId")
                try:  # the hub reads "it-IT" as it
                    call = hub.open_call(
                        params["conversationId"], params.get("language"), "audiohook"
                    )
                except CallRefused as e:
                    await disconnect(session, ws, {"reason": "error", "info": str(e)})
                    return
                session.encoding, session.rate = offer["format"], offer["rate"]
                session.tracks = tuple(TRACKS[name] for name in offer["channels"])
                await session.send("opened", opened(offer, params, hub))
            elif kind in LOST:
                lost = DURATION.fullmatch(
                    str((msg.get("parameters") or {}).get("discarded", "PT0S"))
                )
                if lost is None:
                    raise ProtocolError(f"{kind} without a discarded duration in seconds")
                if call is not None:
                    call.skip(float(lost.group(1)))
            elif kind == "update":  # the conversation changed language
                try:
                    if call is not None:
                        call.switch(hub.recognizer((msg.get("parameters") or {}).get("language")))
                except CallRefused as e:  # no head for it and no any head: keep the one it has
                    log.warning("call_update call=%s reason=%r", call.id, str(e))
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
            await disconnect(session, ws, {"reason": "error", "info": reason})
    finally:
        hub.goodbyes.discard(goodbye)
    await end_call(call, reason, error)
