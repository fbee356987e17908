"""Audio in: decode files block by block (WAV PCM/float/μ-law/A-law, FLAC, OGG, ...), turn caller
buffers into float32, and bring everything to 16 kHz."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import RtserError, RtserWarning
from .resample import Resampler

SAMPLE_RATE = 16000  # the rate of everything after audio in: VAD, front ends, encoders
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
            (size,) = struct.unpack("<I", chunk[4:])
            if chunk[:4] == b"data":
                return f.tell(), size
            f.seek(size + (size & 1), 1)
    return None


class _Window:
    """A binary file seen from ``offset`` on (libsndfile reads a headerless data chunk through
    it)."""

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


@dataclass(frozen=True)
class AudioInfo:
    """What a recording holds, known before any sample is decoded."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _open(path: Path) -> tuple[sf.SoundFile, object | None]:
    """libsndfile's view of ``path``, and the raw file it reads through when the WAV header cannot
    be trusted. libsndfile trusts the file over a WAV header: a file cut short reads as a shorter
    one (refused here), and a header written before the length was known reads as empty (read as
    headerless data, with a warning)."""
    try:
        file = sf.SoundFile(str(path))
    except Exception as e:  # libsndfile's message is the useful part
        reason = str(e).split(":")[-1].strip() or "unreadable"
        raise RtserError(
            f"{path}: not a readable audio file ({reason}); use WAV, FLAC or OGG"
        ) from None
    chunk = wav_data_chunk(path)
    if chunk is None:
        return file, None
    offset, declared = chunk
    present = path.stat().st_size - offset
    if declared in STREAMING_SIZES and file.frames == 0 and present > 0:
        warnings.warn(
            f"{path}: the WAV header gives no data length (a recorder that did not finish it?); "
            "reading the audio that is there",
            RtserWarning,
            stacklevel=4,
        )
        raw = open(path, "rb")  # noqa: SIM115 (closed by AudioFile.close)
        headerless = sf.SoundFile(
            _Window(raw, offset),
            format="RAW",
            samplerate=file.samplerate,
            channels=file.channels,
            subtype=file.subtype,
            endian="LITTLE",
        )
        file.close()
        return headerless, raw
    if declared not in STREAMING_SIZES and declared > present:
        file.close()
        raise RtserError(
            f"{path}: the file is truncated (its header promises {declared} bytes of audio, "
            f"{present} are there); re-export or repair it"
        )
    return file, None


class AudioFile:
    """An open recording: ``info`` at once, ``blocks()`` yields ``(frames, channels)`` float32 at
    the file's rate. A context manager.

    >>> with AudioFile("call.wav") as f:
    ...     for block in f.blocks(1.0):
    ...         ...
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise RtserError(f"{path}: no such file; check the path")
        self._file, self._raw = _open(path)
        self.info = AudioInfo(path, self._file.samplerate, self._file.channels, self._file.frames)
        if self.info.frames <= 0:
            self.close()
            raise RtserError(f"{path}: the file holds no audio samples")

    def blocks(self, seconds: float = 1.0) -> Iterator[np.ndarray]:
        path, rate = self.info.path, self.info.sample_rate
        size = max(1, int(seconds * rate))
        self._file.seek(0)
        read = 0
        try:
            for block in self._file.blocks(blocksize=size, dtype="float32", always_2d=True):
                read += len(block)
                yield check_samples(block, path)
        except RtserError:
            raise
        except Exception as e:
            raise RtserError(
                f"{path}: decoding stopped after {read / rate:.1f} s ({e}); the "
                "file may be truncated or corrupt"
            ) from None
        if read < self.info.frames:
            raise RtserError(
                f"{path}: the file is truncated ({read} of {self.info.frames} samples could "
                "be read); re-export or repair it"
            )

    def close(self) -> None:
        self._file.close()
        if self._raw is not None:
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
        raise RtserError(
            f"{what}: float samples reach {peak:.3g}, far outside [-1, 1]; scale them (16-bit PCM "
            "values as floats: divide by 32768)"
        )
    return x


def check_sample_rate(rate) -> int:
    """One rule for every entry point (predict, stream, files)."""
    try:
        ok = float(rate) == int(rate) and MIN_RATE <= int(rate) <= MAX_RATE
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise RtserError(
            f"sample rate {rate!r} is not supported; give a whole number of Hz from {MIN_RATE} to "
            f"{MAX_RATE}"
        )
    return int(rate)


def load(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as mono float32 at ``sample_rate`` (channels averaged), resampled block by
    block."""
    with AudioFile(path) as f:
        r = Resampler(f.info.sample_rate, sample_rate)
        return np.concatenate([r.process(b.mean(axis=1)) for b in f.blocks(10.0)] + [r.flush()])


def as_float(samples, channels_hint: int | None = None) -> np.ndarray:
    """Caller audio -> ``(frames, channels)`` float32 in [-1, 1]. Accepts float or integer arrays
    (``(n,)``, ``(n, ch)`` or ``(ch, n)`` with ch <= 8) and 16-bit little-endian PCM ``bytes``."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        if len(samples) % 2:
            raise RtserError("PCM bytes must be 16-bit little-endian: got an odd number of bytes")
        x = np.frombuffer(samples, dtype="<i2")
        n_channels = channels_hint or 1
        if len(x) % n_channels:
            raise RtserError(f"PCM bytes do not split into {n_channels} interleaved channels")
        x = x.reshape(-1, n_channels)
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
        x = (x.astype(np.float32) - (info.max + info.min + 1) / 2) / (
            info.max + 1 - (info.max + info.min + 1) / 2
        )
    elif x.dtype.kind != "f":
        raise RtserError(f"audio samples must be numbers, got dtype {x.dtype}")
    return check_samples(x.astype(np.float32, copy=False))


class ToMono16k:
    """Stateful per-channel (or mixed) conversion of ``(frames, channels)`` blocks to 16 kHz."""

    def __init__(self, sample_rate: int, channels: int, split: bool):
        self.split = split
        self.resamplers = [
            Resampler(sample_rate, SAMPLE_RATE) for _ in range(channels if split else 1)
        ]

    def process(self, block: np.ndarray) -> list[np.ndarray]:
        cols = [block[:, i] for i in range(block.shape[1])] if self.split else [block.mean(axis=1)]
        return [r.process(c) for r, c in zip(self.resamplers, cols)]

    def flush(self) -> list[np.ndarray]:
        return [r.flush() for r in self.resamplers]
