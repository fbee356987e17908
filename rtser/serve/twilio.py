"""Twilio Media Streams: connected, start, media (base64 μ-law, 8 kHz, per track), stop."""

from __future__ import annotations

import base64
import binascii

from ..audio import g711
from .hub import CallOverloaded, CallRefused, Hub, Refusal, Track
from .protocol import ProtocolError, end_call, end_reason, parse_json

TRACKS = {"inbound": Track.CUSTOMER, "outbound": Track.AGENT}
CLOSE_CODES = {
    Refusal.CAPACITY: 1013,
    Refusal.LANGUAGE: 1008,
    Refusal.DUPLICATE: 1008,
}  # try again later / policy


async def handle(ws, hub: Hub) -> None:
    call, reason, error = None, "stop", False
    try:
        async for text in ws:
            msg = parse_json(text)
            event = msg.get("event")
            if event == "start":
                if call is not None:
                    raise ProtocolError("a second start on one stream")
                start = msg.get("start") or {}
                fmt = start.get("mediaFormat") or {}
                offered = (
                    fmt.get("encoding"),
                    int(fmt.get("sampleRate", 0)),
                    int(fmt.get("channels", 1)),
                )
                if offered != ("audio/x-mulaw", 8000, 1):
                    raise ProtocolError(f"unsupported media format {fmt}")
                if not start.get("callSid"):
                    raise ProtocolError("start without callSid")
                lang = (start.get("customParameters") or {}).get("lang")
                try:
                    call = hub.open_call(start["callSid"], lang, "twilio")
                except CallRefused as e:
                    await ws.close(CLOSE_CODES[e.reason], str(e)[:120])
                    return
            elif event == "media":
                if call is None:
                    raise ProtocolError("media before start")
                media = msg.get("media") or {}
                track = TRACKS.get(media.get("track", "inbound"))
                if track is None:
                    raise ProtocolError(f"unknown track {media.get('track')!r}")
                try:
                    payload = base64.b64decode(media.get("payload", ""), validate=True)
                except binascii.Error:
                    raise ProtocolError("media payload is not base64") from None
                call.push((track,), g711.ulaw(payload), 8000)
            elif event == "stop":
                break
            elif event not in ("connected", "dtmf", "mark"):
                raise ProtocolError(f"unknown event {event!r}")
    except Exception as e:
        reason, error = end_reason(e)
        if error:  # 1013: try again later (the server fell behind); 1003: the input was wrong
            await ws.close(1013 if isinstance(e, CallOverloaded) else 1003, reason[:120])
    await end_call(call, reason, error)
