"""Asterisk AudioSocket over TCP: type (1 byte), length (2 bytes, big-endian), payload. The UUID
comes first; signed 16-bit PCM follows; a hang-up frame or the end of the stream ends the
connection. Nothing is sent back except a hang-up frame when the call is refused.

Each connection carries one track. Two connections with the same UUID, one on each AudioSocket
port, are the two directions of one call (a passive tap: the caller's voice, and the agent's)."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

import numpy as np

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


CLOSED = "hang-up (connection closed)"
MULAW_CHECK = 10  # audio frames looked at before the first is pushed
PACKET_S = 0.02  # Asterisk forwards a channel's audio in 20 ms packets
ULAW_FRAME = 160  # bytes of 20 ms of G.711 at 8 kHz (20 ms of slin is 320)
MISLABELLED = (
    "Asterisk sends 160-byte frames every 20 ms as 8 kHz slin: that is μ-law audio labelled as "
    "slin; dial AudioSocket with c(slin16), e.g. Dial(AudioSocket/HOST:PORT/${UUID()}/c(slin16))"
)


def uuid_text(payload: bytes) -> str:
    h = payload.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Held(NamedTuple):
    """An audio frame held until the first ``MULAW_CHECK`` have arrived."""

    kind: int
    size: int  # bytes
    arrival: float  # time.monotonic()
    samples: np.ndarray


def mislabelled(frames: list[Held]) -> bool:
    """Whether the first audio frames are G.711 that Asterisk labels 8 kHz slin (a μ-law channel
    dialled without ``c(slin16)``): 160 bytes each, 10 ms of slin, yet arriving a packet (20 ms)
    apart."""
    sizes = all(f.kind == 0x10 and f.size == ULAW_FRAME for f in frames)
    span = frames[-1].arrival - frames[0].arrival
    return sizes and span >= 0.75 * PACKET_S * (len(frames) - 1)


async def handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    hub: Hub,
    track: Track = Track.CALLER,
) -> None:
    call, reason, error = None, "hang-up", False
    held: list[Held] | None = []  # the first audio frames, until checked
    try:
        while True:
            head = await reader.readexactly(3)
            kind, size = head[0], int.from_bytes(head[1:], "big")
            payload = await reader.readexactly(size)
            if kind == UUID:
                if call is not None or size != 16:
                    raise ProtocolError("a UUID frame that is not the first, or not 16 bytes")
                try:
                    call = hub.join_call(uuid_text(payload), "audiosocket", track)
                except CallRefused:
                    writer.write(bytes([HANGUP, 0, 0]))
                    await writer.drain()
                    return
            elif call is None:
                raise ProtocolError(f"frame type 0x{kind:02x} before the UUID")
            elif kind in RATES and held is None:
                call.push((track,), l16(payload), RATES[kind])
            elif kind in RATES:
                held.append(Held(kind, size, time.monotonic(), l16(payload)))
                if len(held) == MULAW_CHECK:
                    frames, held = held, None
                    if mislabelled(frames):
                        raise ProtocolError(MISLABELLED)
                    for f in frames:
                        call.push((track,), f.samples, RATES[f.kind])
            elif kind == HANGUP:
                break
            elif kind == ERROR:
                reason = f"Asterisk reported error {payload.hex() or '?'}"
                break
            elif kind != DTMF:  # a digit, not audio
                raise ProtocolError(f"unknown frame type 0x{kind:02x}")
    except asyncio.IncompleteReadError as e:
        # Asterisk ends a call by closing the connection; it sends no hang-up frame
        reason, error = ("a frame cut off mid-way", True) if e.partial else (CLOSED, False)
    except ConnectionError:
        reason = "client vanished"
    except Exception as e:
        reason, error = end_reason(e)
    finally:
        if call is not None and held:  # a call shorter than the check: its audio still counts
            for f in held:
                call.push((track,), f.samples, RATES[f.kind])
        await end_call(call, reason, error, track)
        writer.close()
