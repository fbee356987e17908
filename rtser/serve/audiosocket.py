"""Asterisk AudioSocket over TCP: type (1 byte), length (2 bytes, big-endian), payload. The UUID
comes first; signed 16-bit PCM follows; a hang-up frame or the end of the stream ends the call.
Nothing is sent back except a hang-up frame when the call is refused."""

from __future__ import annotations

import asyncio

from .hub import CallRefused, Hub, Track
from .protocol import ProtocolError, end_call, end_reason, l16

UUID, HANGUP, DTMF, ERROR = 0x01, 0x00, 0x03, 0xFF
RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}


def uuid_text(payload: bytes) -> str:
    h = payload.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hub: Hub) -> None:
    call, reason, error = None, "hang-up", False
    try:
        while True:
            head = await reader.readexactly(3)
            kind, size = head[0], int.from_bytes(head[1:], "big")
            payload = await reader.readexactly(size)
            if kind == UUID:
                if call is not None or size != 16:
                    raise ProtocolError("a UUID frame that is not the first, or not 16 bytes")
                try:
                    call = hub.open_call(uuid_text(payload), None, "audiosocket")
                except CallRefused:
                    writer.write(bytes([HANGUP, 0, 0]))
                    await writer.drain()
                    return
            elif call is None:
                raise ProtocolError(f"frame type 0x{kind:02x} before the UUID")
            elif kind in RATES:
                call.push((Track.CALLER,), l16(payload), RATES[kind])
            elif kind == HANGUP:
                break
            elif kind == ERROR:
                reason = f"Asterisk reported error {payload.hex() or '?'}"
                break
            elif kind != DTMF:  # a digit, not audio
                raise ProtocolError(f"unknown frame type 0x{kind:02x}")
    except asyncio.IncompleteReadError as e:
        reason, error = ("a frame cut off mid-way", True) if e.partial else ("end of stream", False)
    except ConnectionError:
        reason = "client vanished"
    except Exception as e:
        reason, error = end_reason(e)
    finally:
        await end_call(call, reason, error)
        writer.close()
