"""Reader for CTranslate2 ``model.bin`` files (binary format version 6).

Layout, all little-endian: u32 version, string spec name, u32 revision, u32 variable count, then
per variable: string name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, raw bytes; then a u32
alias count and (alias, target) string pairs. A string is a u16 length (counting a trailing NUL),
the bytes, the NUL.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BF16 = 5


class _Reader:
    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self) -> str:
        n = self.take("H")
        raw = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return raw.rstrip(b"\0").decode("utf-8")

    def raw(self, n: int) -> memoryview:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_model_bin(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Return ``(header, variables)``; aliases resolve to the same arrays as their targets."""
    data = memoryview(Path(path).read_bytes())
    r = _Reader(data)
    version = r.take("I")
    if version < 5:
        raise ValueError(
            f"{path}: CTranslate2 binary version {version} is not supported (need >= 5)"
        )
    header = {"version": version, "spec": r.string(), "revision": r.take("I")}
    variables: dict[str, np.ndarray] = {}
    for _ in range(r.take("I")):
        name = r.string()
        rank = r.take("B")
        shape = tuple(r.take("I") for _ in range(rank))
        dtype = r.take("B")
        nbytes = r.take("I")
        raw = r.raw(nbytes)
        if dtype == BF16:
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in DTYPES:
            array = np.frombuffer(raw, dtype=DTYPES[dtype])
        else:
            raise ValueError(f"{path}: variable {name} has unknown dtype code {dtype}")
        variables[name] = array.reshape(shape)
    if r.pos < len(data):
        for _ in range(r.take("I")):
            alias, target = r.string(), r.string()
            variables[alias] = variables[target]
    return header, variables
