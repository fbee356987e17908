"""Audio in: decoding files block by block, turning caller buffers into float32, G.711, and
resampling everything to the 16 kHz that the pipeline runs at.

Imports only ``rtser.errors`` (and numpy, soundfile)."""

from .io import (
    SAMPLE_RATE,
    AudioFile,
    AudioInfo,
    ToMono16k,
    as_float,
    check_sample_rate,
    check_samples,
    load,
)
from .resample import Resampler, resample

__all__ = [
    "SAMPLE_RATE",
    "AudioFile",
    "AudioInfo",
    "ToMono16k",
    "as_float",
    "check_sample_rate",
    "check_samples",
    "load",
    "Resampler",
    "resample",
]
