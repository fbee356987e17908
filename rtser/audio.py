"""Audio in: decode files block by block (WAV PCM/float/μ-law/A-law, FLAC, OGG, ...), turn caller
buffers into float32, and bring everything to 16 kHz."""
from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from .errors import RtserError, RtserWarning
from .frontend import SAMPLE_RATE
from .resample import Resampler

MIN_RATE, MAX_RATE = 4000, 768000
MAX_PEAK = 16.0  # float audio is nominally within [-1, 1]; far beyond it the scale is wrong
STREAMING_SIZES = (0, 0xFFFFFFFF)  # data sizes a recorder writes before it knows the length


def wav_data_chunk(path: Path) -> tuple[int, int] | None:
    """``(offset, declared size)`` of a RIFF/WAVE file's data chunk; None for other files."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        while len(chunk := f.read(8)) == 8:
            size = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"data":
                return f.tell(), size
            f.seek(size + (size & 1), 1)
    return None


class _Window:
    """A binary file seen from ``offset`` on (libsndfile reads a headerless data chunk through it)."""

    def __init__(self, f, offset: int):
        self.f, self.offset = f, offset
        f.seek(offset)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(self.offset + pos if whence == 0 else pos, whence) - self.offset

    def tell(self) -> int:
        return self.f.tell() - self.offset

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def readinto(self, buf) -> int:
        return self.f.readinto(buf)


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
        self._check_wav_length()
        self.frames = self._file.frames
        if self.frames <= 0:
            raise RtserError(f"{self.path}: the file holds no audio samples")

    def _check_wav_length(self) -> None:
        """libsndfile trusts the file over a WAV header: a file cut short reads as a shorter one,
        and a header written before the length was known reads as empty. Catch both."""
        chunk = wav_data_chunk(self.path)
        if chunk is None:
            return
        offset, declared = chunk
        present = self.path.stat().st_size - offset
        if declared in STREAMING_SIZES:
            if self._file.frames == 0 and present > 0:
                warnings.warn(f"{self.path}: the WAV header gives no data length (a recorder that did not "
                              "finish it?); reading the audio that is there", RtserWarning, stacklevel=3)
                info = self._file
                self._raw = open(self.path, "rb")
                self._file = sf.SoundFile(_Window(self._raw, offset), format="RAW", samplerate=info.samplerate,
                                          channels=info.channels, subtype=info.subtype, endian="LITTLE")
                info.close()
        elif declared > present:
            raise RtserError(f"{self.path}: the file is truncated (its header promises {declared} bytes of "
                             f"audio, {present} are there); re-export or repair it")

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
                yield check_samples(block, self.path)
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
        if hasattr(self, "_raw"):
            self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_samples(x: np.ndarray, what="input") -> np.ndarray:
    """Float samples must be finite and on the [-1, 1] scale (a little overshoot is fine)."""
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())  # NaN propagates; no temporary as large as x
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RtserError(f"{what}: audio contains NaN or infinite samples; clean the signal first")
    peak = max(-lo, hi)
    if peak > MAX_PEAK:
        raise RtserError(f"{what}: float samples reach {peak:.3g}, far outside [-1, 1]; scale them "
                         "(16-bit PCM values as floats: divide by 32768)")
    return x


def check_sample_rate(rate) -> int:
    """One rule for every entry point (predict, stream, files)."""
    try:
        ok = float(rate) == int(rate) and MIN_RATE <= int(rate) <= MAX_RATE
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise RtserError(f"sample rate {rate!r} is not supported; give a whole number of Hz from "
                         f"{MIN_RATE} to {MAX_RATE}")
    return int(rate)


def load(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as mono float32 at ``sample_rate`` (channels averaged), resampled block by block."""
    with AudioFile(path) as f:
        r = Resampler(f.sample_rate, sample_rate)
        return np.concatenate([r.process(b.mean(axis=1)) for b in f.blocks(10.0)] + [r.flush()])


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
    return check_samples(x.astype(np.float32, copy=False))


class ToMono16k:
    """Stateful per-channel (or mixed) conversion of ``(frames, channels)`` blocks to 16 kHz."""

    def __init__(self, sample_rate: int, channels: int, split: bool):
        self.split = split
        self.resamplers = [Resampler(sample_rate, SAMPLE_RATE) for _ in range(channels if split else 1)]

    def process(self, block: np.ndarray) -> list[np.ndarray]:
        cols = [block[:, i] for i in range(block.shape[1])] if self.split else [block.mean(axis=1)]
        return [r.process(c) for r, c in zip(self.resamplers, cols)]

    def flush(self) -> list[np.ndarray]:
        return [r.flush() for r in self.resamplers]
