"""The audio-fork protocols of contact-center platforms, each driving a ``calls.Call``:
Genesys AudioHook v2 (monitor mode), Twilio Media Streams, Asterisk AudioSocket.

Malformed input ends that call (its sessions are flushed and ``call_end`` is emitted) with a logged
reason; a vanished client is treated as a hang-up. Wire formats: ``../shared/notes/callcenter.md``."""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging

import numpy as np
from websockets.exceptions import ConnectionClosed

from . import g711
from .calls import Call, CallRefused, Hub

log = logging.getLogger("rtser.serve")

TWILIO_TRACKS = {"inbound": "customer", "outbound": "agent"}
AUDIOHOOK_TRACKS = {"external": "customer", "internal": "agent"}
AUDIOHOOK_IGNORED = {"paused", "resumed", "discarded", "update", "error"}
PROBE = "00000000-0000-0000-0000-000000000000"
AUDIOSOCKET_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100,
                     0x16: 48000, 0x17: 96000, 0x18: 192000}


class ProtocolError(Exception):
    """Input that breaks the protocol; the message says what was wrong."""


def _json(text) -> dict:
    if isinstance(text, bytes):
        raise ProtocolError("a binary frame where a JSON text message was expected")
    try:
        msg = json.loads(text)
    except ValueError:
        raise ProtocolError("a text frame that is not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a JSON message that is not an object")
    return msg


MALFORMED = (ProtocolError, ValueError, TypeError, KeyError, AttributeError)


def _why(e: Exception) -> tuple[str, bool]:
    """Why a call ended on ``e`` (called in its ``except``), and whether that is an error: input
    that broke the protocol, or a bug (logged with its trace; the call still ends cleanly)."""
    if isinstance(e, ConnectionClosed):
        close = e.rcvd or e.sent
        if close is None:
            return "client vanished", False
        return ("a frame over the size limit" if close.code == 1009 else f"connection closed ({close.code})"), False
    if isinstance(e, ProtocolError):
        return str(e), True
    if isinstance(e, MALFORMED):
        return f"a malformed message ({type(e).__name__}: {e})", True
    log.exception("call handler failed")
    return f"internal error ({type(e).__name__})", True


async def _end(call: Call | None, reason: str, error: bool = False) -> None:
    if error:
        log.warning("call_error call=%s reason=%r", call.id if call else "-", reason)
    if call is not None:
        await call.finish(reason)


async def twilio(ws, hub: Hub) -> None:
    """Twilio Media Streams: connected, start, media (base64 μ-law, 8 kHz, per track), stop."""
    call, reason, error = None, "stop", False
    try:
        async for text in ws:
            msg = _json(text)
            event = msg.get("event")
            if event == "start":
                if call is not None:
                    raise ProtocolError("a second start on one stream")
                start = msg.get("start") or {}
                fmt = start.get("mediaFormat") or {}
                if (fmt.get("encoding"), int(fmt.get("sampleRate", 0)), int(fmt.get("channels", 1))) != ("audio/x-mulaw", 8000, 1):
                    raise ProtocolError(f"unsupported media format {fmt}")
                if not start.get("callSid"):
                    raise ProtocolError("start without callSid")
                try:
                    call = hub.open_call(start["callSid"], (start.get("customParameters") or {}).get("lang"), "twilio")
                except CallRefused as e:
                    await ws.close(1013 if "capacity" in str(e) else 1008, str(e)[:120])
                    return
            elif event == "media":
                if call is None:
                    raise ProtocolError("media before start")
                media = msg.get("media") or {}
                track = TWILIO_TRACKS.get(media.get("track", "inbound"))
                if track is None:
                    raise ProtocolError(f"unknown track {media.get('track')!r}")
                try:
                    payload = base64.b64decode(media.get("payload", ""), validate=True)
                except binascii.Error:
                    raise ProtocolError("media payload is not base64") from None
                call.push(track, g711.ulaw(payload), 8000)
            elif event == "stop":
                break
            elif event not in ("connected", "dtmf", "mark"):
                raise ProtocolError(f"unknown event {event!r}")
    except Exception as e:
        reason, error = _why(e)
        if error:
            await ws.close(1003, reason[:120])
    await _end(call, reason, error)


async def audiohook(ws, hub: Hub) -> None:
    """Genesys AudioHook v2, monitor mode: open/opened, ping/pong, close/closed, binary audio
    (PCMU or L16, 8 or 16 kHz, channels interleaved: external = customer, internal = agent)."""
    call, reason, error = None, "close", False
    state = {"id": None, "seq": 0, "clientseq": 0}
    channels: list[str] = []
    encoding, rate = "PCMU", 8000

    async def send(kind: str, parameters: dict) -> None:
        state["seq"] += 1
        await ws.send(json.dumps({"version": "2", "id": state["id"], "type": kind, "seq": state["seq"],
                                  "clientseq": state["clientseq"], "parameters": parameters}))

    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                if call is None:
                    raise ProtocolError("audio before open")
                pcm = g711.ulaw(frame) if encoding == "PCMU" else _l16(frame)
                if len(pcm) % len(channels):
                    raise ProtocolError(f"an audio frame that does not split into {len(channels)} channels")
                tracks = tuple(AUDIOHOOK_TRACKS[name] for name in channels)
                if len(tracks) == 1:
                    call.push(tracks[0], pcm, rate)
                else:
                    call.push(tracks, pcm.reshape(-1, len(tracks)), rate)
                continue
            msg = _json(frame)
            state["id"] = msg.get("id", state["id"])
            state["clientseq"] = msg.get("seq", state["clientseq"])
            kind = msg.get("type")
            if kind == "open":
                params = msg.get("parameters") or {}
                offer = next((m for m in params.get("media") or [] if m.get("format") in ("PCMU", "L16")
                              and m.get("rate") in (8000, 16000) and m.get("channels")
                              and set(m["channels"]) <= set(AUDIOHOOK_TRACKS)), None)
                if offer is None:
                    raise ProtocolError("open offers no PCMU/L16 media at 8 or 16 kHz")
                if params.get("conversationId") == PROBE:  # a connection probe: answer, start no call
                    await send("opened", {"media": [offer], "startPaused": False})
                    continue
                if not params.get("conversationId"):
                    raise ProtocolError("open without conversationId")
                lang = (params.get("language") or "").split("-")[0].lower() or None
                try:
                    call = hub.open_call(params["conversationId"], lang, "audiohook")
                except CallRefused as e:
                    await send("disconnect", {"reason": "error", "info": str(e)})
                    return
                encoding, rate, channels = offer["format"], offer["rate"], list(offer["channels"])
                await send("opened", {"media": [offer], "startPaused": False})
            elif kind == "ping":
                await send("pong", {})
            elif kind == "close":
                await send("closed", {})
                break
            elif kind not in AUDIOHOOK_IGNORED:
                raise ProtocolError(f"unknown message type {kind!r}")
    except Exception as e:
        reason, error = _why(e)
        if error:
            try:
                await send("disconnect", {"reason": "error", "info": reason})
            except ConnectionClosed:
                pass
    await _end(call, reason, error)


def _l16(frame: bytes) -> np.ndarray:
    if len(frame) % 2:
        raise ProtocolError("an L16 audio frame with an odd number of bytes")
    return np.frombuffer(frame, "<i2").astype(np.float32) / 32768


async def audiosocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hub: Hub) -> None:
    """Asterisk AudioSocket over TCP: type (1 byte), length (2 bytes, big-endian), payload. The UUID
    comes first; signed 16-bit PCM follows; a hang-up frame or the end of the stream ends the call.
    Nothing is sent back except a hang-up frame when the call is refused."""
    call, reason, error = None, "hang-up", False
    try:
        while True:
            head = await reader.readexactly(3)
            kind, size = head[0], int.from_bytes(head[1:], "big")
            payload = await reader.readexactly(size)
            if kind == 0x01:
                if call is not None or size != 16:
                    raise ProtocolError("a UUID frame that is not the first, or not 16 bytes")
                uuid = payload.hex()
                uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
                try:
                    call = hub.open_call(uuid, None, "audiosocket")
                except CallRefused:
                    writer.write(b"\x00\x00\x00")
                    await writer.drain()
                    return
            elif call is None:
                raise ProtocolError(f"frame type 0x{kind:02x} before the UUID")
            elif kind in AUDIOSOCKET_RATES:
                call.push("caller", _l16(payload), AUDIOSOCKET_RATES[kind])
            elif kind == 0x00:
                break
            elif kind == 0xFF:
                reason = f"Asterisk reported error {payload.hex() or '?'}"
                break
            elif kind != 0x03:  # 0x03: a DTMF digit, not audio
                raise ProtocolError(f"unknown frame type 0x{kind:02x}")
    except asyncio.IncompleteReadError as e:
        reason, error = ("a frame cut off mid-way", True) if e.partial else ("end of stream", False)
    except ConnectionError:
        reason = "client vanished"
    except Exception as e:
        reason, error = _why(e)
    finally:
        await _end(call, reason, error)
        writer.close()
