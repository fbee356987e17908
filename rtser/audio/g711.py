"""G.711 decoding (μ-law, A-law) with 256-entry numpy tables: exact, no dependency (``audioop`` is
gone from Python 3.13)."""

from __future__ import annotations

import numpy as np


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.uint8)
    t = ((u & 0x0F).astype(np.int32) << 3) + 0x84
    t <<= (u & 0x70).astype(np.int32) >> 4
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.float32) / 32768


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.uint8) ^ 0x55
    seg = (a & 0x70).astype(np.int32) >> 4
    t = (a & 0x0F).astype(np.int32) << 4
    t = np.where(
        seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0))
    )
    return np.where(a & 0x80, t, -t).astype(np.float32) / 32768


ULAW, ALAW = _ulaw_table(), _alaw_table()


def ulaw(payload: bytes) -> np.ndarray:
    return ULAW[np.frombuffer(payload, np.uint8)]


def alaw(payload: bytes) -> np.ndarray:
    return ALAW[np.frombuffer(payload, np.uint8)]
