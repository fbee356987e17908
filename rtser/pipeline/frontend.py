"""Spectral front ends, in numpy: one implementation shared by training and the runtime.

``log_mel`` is Whisper's (25 ms Hann window, 10 ms hop, 80 Slaney mel bands, log10, clamp to
max - 8, (x + 4) / 4); ``mel_power`` is the GE2E voice encoder's 40-band power mel spectrogram.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..audio import SAMPLE_RATE

N_FFT = 400
HOP = 160


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log = f >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    hz = m * (200.0 / 3)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), hz)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney-normalised triangular mel filter bank, ``(n_mels, n_fft // 2 + 1)`` (as librosa)."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    ramps = mel_f[:, None] - fft_freqs[None, :]
    fdiff = np.diff(mel_f)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def power_spectrogram(audio: np.ndarray) -> np.ndarray:
    """|STFT|^2 with centred reflect-padded frames, ``(n_fft // 2 + 1, len(audio) // HOP)``."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) < N_FFT // 2 + 1:
        raise ValueError(f"need a mono signal of at least {N_FFT // 2 + 1} samples")
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    spec = np.fft.rfft(frames * _hann(), axis=-1)
    power = spec.real**2 + spec.imag**2
    return power[:-1].T.astype(np.float32)  # Whisper drops the last frame: len // HOP frames


def log_mel(audio: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram, ``(n_mels, len(audio) // 160)`` float32."""
    return log_mel_of_power(power_spectrogram(audio), n_mels)


def log_mel_of_power(power: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """``log_mel`` from a ``power_spectrogram`` already computed."""
    log = np.log10(np.maximum(mel_filters(n_mels) @ power, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


def mel_power(audio: np.ndarray, n_mels: int = 40) -> np.ndarray:
    """GE2E input: power mel spectrogram (not log), ``(frames, n_mels)`` float32."""
    return np.ascontiguousarray((mel_filters(n_mels) @ power_spectrogram(audio)).T)
