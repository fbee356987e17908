"""What the protocol handlers share: their error, JSON messages, and how a call ends.

Malformed input ends that call (its sessions are flushed and ``call_end`` is emitted) with a logged
reason; a vanished client is treated as a hang-up. The wire formats are in docs/callcenter.md."""

from __future__ import annotations

import json
import logging

import numpy as np
from websockets.exceptions import ConnectionClosed

from .hub import Call, CallOverloaded, Track

log = logging.getLogger("rtser.serve")


class ProtocolError(Exception):
    """Input that breaks the protocol; the message says what was wrong."""


MALFORMED = (ProtocolError, ValueError, TypeError, KeyError, AttributeError)


def parse_json(text) -> dict:
    """A JSON object from a text frame, or ``ProtocolError``."""
    if isinstance(text, bytes):
        raise ProtocolError("a binary frame where a JSON text message was expected")
    try:
        msg = json.loads(text)
    except ValueError:
        raise ProtocolError("a text frame that is not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a JSON message that is not an object")
    return msg


def l16(frame: bytes) -> np.ndarray:
    """Signed 16-bit little-endian PCM -> float32."""
    if len(frame) % 2:
        raise ProtocolError("an L16 audio frame with an odd number of bytes")
    return np.frombuffer(frame, "<i2").astype(np.float32) / 32768


def end_reason(e: Exception) -> tuple[str, bool]:
    """Why a call ended on ``e`` (called in its ``except``), and whether that is an error: input
    that broke the protocol, or a bug (logged with its trace; the call still ends cleanly)."""
    if isinstance(e, ConnectionClosed):
        close = e.rcvd or e.sent
        if close is None:
            return "client vanished", False
        if close.code == 1009:
            return "a frame over the size limit", False
        return f"connection closed ({close.code})", False
    if isinstance(e, (ProtocolError, CallOverloaded)):
        return str(e), True
    if isinstance(e, MALFORMED):
        return f"a malformed message ({type(e).__name__}: {e})", True
    log.exception("call handler failed")
    return f"internal error ({type(e).__name__})", True


async def end_call(
    call: Call | None, reason: str, error: bool = False, track: Track | None = None
) -> None:
    if error:
        log.warning("call_error call=%s reason=%r", call.id if call else "-", reason)
    if call is not None:
        await call.leave(reason, track)
