"""Audio in: decode files block by block (WAV PCM/float/μ-law/A-law, FLAC, OGG, ...), turn caller
buffers into float32, and bring everything to 16 kHz."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from .errors import RtserError
from .frontend import SAMPLE_RATE
from .resample import Resampler, resample


class AudioFile:
    """An open recording; ``blocks()`` yields ``(frames, channels)`` float32 at the file's rate."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise RtserError(f"{self.path}: no such file; check the path")
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:  # libsndfile's message is the useful part
            reason = str(e).split(":")[-1].strip() or "unreadable"
            raise RtserError(f"{self.path}: not a readable audio file ({reason}); "
                             "use WAV, FLAC or OGG") from None
        self.sample_rate, self.channels = self._file.samplerate, self._file.channels
        self.frames = self._file.frames
        if self.frames <= 0:
            raise RtserError(f"{self.path}: the file holds no audio samples")

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def blocks(self, seconds: float = 1.0) -> Iterator[np.ndarray]:
        size = max(1, int(seconds * self.sample_rate))
        self._file.seek(0)
        read = 0
        try:
            for block in self._file.blocks(blocksize=size, dtype="float32", always_2d=True):
                read += len(block)
                yield check_finite(block, self.path)
        except RtserError:
            raise
        except Exception as e:
            raise RtserError(f"{self.path}: decoding stopped after {read / self.sample_rate:.1f} s "
                             f"({e}); the file may be truncated or corrupt") from None
        if read < self.frames:
            raise RtserError(f"{self.path}: the file is truncated ({read} of {self.frames} "
                             "samples could be read); re-export or repair it")

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_finite(x: np.ndarray, what="input") -> np.ndarray:
    if not np.all(np.isfinite(x)):
        raise RtserError(f"{what}: audio contains NaN or infinite samples; clean the signal first")
    return x


def load(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as mono float32 at ``sample_rate`` (channels averaged)."""
    with AudioFile(path) as f:
        mono = np.concatenate([b.mean(axis=1) for b in f.blocks(10.0)])
        return resample(mono, f.sample_rate, sample_rate)


def as_float(samples, channels_hint: int | None = None) -> np.ndarray:
    """Caller audio -> ``(frames, channels)`` float32 in [-1, 1]. Accepts float or integer arrays
    (``(n,)``, ``(n, ch)`` or ``(ch, n)`` with ch <= 8) and 16-bit little-endian PCM ``bytes``."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        if len(samples) % 2:
            raise RtserError("PCM bytes must be 16-bit little-endian: got an odd number of bytes")
        x = np.frombuffer(samples, dtype="<i2")
        ch = channels_hint or 1
        if len(x) % ch:
            raise RtserError(f"PCM bytes do not split into {ch} interleaved channels")
        x = x.reshape(-1, ch)
    else:
        x = np.asarray(samples)
        if x.ndim == 1:
            x = x[:, None]
        elif x.ndim == 2 and x.shape[0] <= 8 < x.shape[1]:
            x = x.T  # (channels, frames)
        elif x.ndim != 2:
            raise RtserError(f"audio must be 1-D or 2-D, got shape {x.shape}")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float32) - (info.max + info.min + 1) / 2) / (info.max + 1 - (info.max + info.min + 1) / 2)
    elif x.dtype.kind != "f":
        raise RtserError(f"audio samples must be numbers, got dtype {x.dtype}")
    return check_finite(x.astype(np.float32, copy=False))


class ToMono16k:
    """Stateful per-channel (or mixed) conversion of ``(frames, channels)`` blocks to 16 kHz."""

    def __init__(self, sample_rate: int, channels: int, split: bool):
        if sample_rate < 4000:
            raise RtserError(f"sample rate {sample_rate} Hz is too low; rtser needs at least 4 kHz")
        self.split = split
        self.resamplers = [Resampler(sample_rate, SAMPLE_RATE) for _ in range(channels if split else 1)]

    def process(self, block: np.ndarray) -> list[np.ndarray]:
        cols = [block[:, i] for i in range(block.shape[1])] if self.split else [block.mean(axis=1)]
        return [r.process(c) for r, c in zip(self.resamplers, cols)]

    def flush(self) -> list[np.ndarray]:
        return [r.flush() for r in self.resamplers]
