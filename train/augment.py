"""What a phone line does to speech, as seeded numpy transforms of 16 kHz clips: the training
views that make heads robust (``VIEWS``), the fixed test conditions they are measured under
(``TESTS``), and the noise and codec primitives ``sim/calls.py`` builds calls from.

A view is a function ``(audio, rng, babble) -> audio`` at 16 kHz; ``babble`` gives speech of
speakers that are never in the clip's test fold (other corpora), for babble noise.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import soundfile as sf

from rtser.audio.resample import resample

SR = 16000
PHONE_SR = 8000
PHONE_BAND = (300.0, 3400.0)  # Hz, the telephone channel
PACKET_S = 0.02  # one RTP packet of audio


def dbfs(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def speech_dbfs(x: np.ndarray) -> float:
    """Level of a clip's speech: the mean power of its 10 ms frames within 30 dB of the loudest."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float64)
    power = (frames**2).mean(axis=1) + 1e-20
    return 10 * np.log10(power[power > power.max() * 1e-3].mean())


def at_level(x: np.ndarray, level_db: float) -> np.ndarray:
    return (x * 10 ** ((level_db - dbfs(x)) / 20)).astype(np.float32)


def white(n: int, rng) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def pink(n: int, rng) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def brown(n: int, rng) -> np.ndarray:
    x = np.cumsum(rng.standard_normal(n))
    x -= np.convolve(x, np.ones(801) / 801, mode="same")  # keep it from wandering off (> ~20 Hz)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def hum(n: int, rng, mains: float = 50.0) -> np.ndarray:
    """Mains hum: the fundamental and odd harmonics, with a little noise."""
    t = np.arange(n) / SR
    phase = rng.uniform(0, 2 * np.pi, 6)
    x = sum(np.sin(2 * np.pi * mains * k * t + p) / k for k, p in zip((1, 3, 5, 7, 9, 11), phase))
    return (x / np.std(x) + 0.05 * rng.standard_normal(n)).astype(np.float32)


NOISES = {"white": white, "pink": pink, "brown": brown, "hum": hum}


def add_noise(x: np.ndarray, speech_db: float, kind: str, snr_db: float, rng) -> np.ndarray:
    return x + at_level(NOISES[kind](len(x), rng), speech_db - snr_db)


def g711(x: np.ndarray, law: str = "ULAW") -> tuple[np.ndarray, int]:
    """16 kHz -> 8 kHz G.711 (μ-law or A-law) and back to float at 8 kHz, as a phone line delivers
    it."""
    narrow = resample(x, SR, PHONE_SR)
    buf = io.BytesIO()
    sf.write(buf, np.clip(narrow, -1, 1), PHONE_SR, format="WAV", subtype=law)
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0], PHONE_SR


def band_pass(x: np.ndarray, sr: int, band=PHONE_BAND) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    spec[(f < band[0]) | (f > band[1])] = 0
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def telephone(
    x: np.ndarray,
    rng,
    law: str | None = None,
    loss: float | None = None,
    band: tuple[float, float] | None = PHONE_BAND,
) -> np.ndarray:
    """The telephone channel: the analogue ``band`` (None: none, as on a VoIP or mobile leg), G.711
    at 8 kHz (``law``, random when None), packets lost with probability ``loss`` (0–3 % when None; a
    lost packet is silence), resampled back to 16 kHz as the runtime does with 8 kHz input."""
    law = law or ("ULAW" if rng.random() < 0.5 else "ALAW")
    loss = rng.uniform(0, 0.03) if loss is None else loss
    narrow, sr = g711(band_pass(x, SR, band) if band else x, law)
    packet = int(PACKET_S * sr)
    for k in np.flatnonzero(rng.random(len(narrow) // packet) < loss):
        narrow[k * packet : (k + 1) * packet] = 0
    return resample(narrow, sr, SR)[: len(x)]


def reverb(x: np.ndarray, rng, rt60: float | None = None) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (``rt60`` 0.2–0.8 s) after the direct path."""
    rt60 = rng.uniform(0.2, 0.8) if rt60 is None else rt60
    t = np.arange(int(rt60 * SR)) / SR
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * 0.3
    rir[0] = 1.0
    n = len(x) + len(rir) - 1
    y = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(rir, n), n)[: len(x)]
    return (y * np.abs(x).max() / (np.abs(y).max() + 1e-12)).astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Tempo and pitch times ``factor`` (a resampling, rates on a 160 Hz grid)."""
    return resample(x, SR, int(round(SR / factor / 160)) * 160)


def babble_noise(n: int, rng, babble: Callable[[], np.ndarray], talkers: int = 4) -> np.ndarray:
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        s = babble()
        s = np.resize(s, n) if len(s) < n else s[rng.integers(0, len(s) - n + 1) :][:n]
        out += at_level(s, -20)
    return out


def background(x: np.ndarray, rng, babble: Callable[[], np.ndarray], snr_db: float) -> np.ndarray:
    """Noise of a random kind (white, pink, brown, hum or babble) at ``snr_db`` below the speech."""
    kind = rng.choice([*NOISES, "babble"])
    noise = babble_noise(len(x), rng, babble) if kind == "babble" else NOISES[kind](len(x), rng)
    return x + at_level(noise, speech_dbfs(x) - snr_db)


def gain(x: np.ndarray, rng) -> np.ndarray:
    """Speech at -35 to -10 dBFS, never clipping."""
    y = x * 10 ** ((rng.uniform(-35, -10) - speech_dbfs(x)) / 20)
    return (y / max(1.0, np.abs(y).max() / 0.99)).astype(np.float32)


def noisy(x: np.ndarray, rng, babble: Callable[[], np.ndarray]) -> np.ndarray:
    """A noisy room: speed ±5 %, reverberation with probability 0.3, noise at 0–30 dB SNR, any
    gain."""
    x = speed(x, rng.uniform(0.95, 1.05))
    if rng.random() < 0.3:
        x = reverb(x, rng)
    return gain(background(x, rng, babble, rng.uniform(0, 30)), rng)


def phone(x: np.ndarray, rng, babble: Callable[[], np.ndarray], band=PHONE_BAND) -> np.ndarray:
    """A caller on a phone: half the time speed ±5 % and noise at 10–30 dB SNR, any gain, then the
    telephone channel (through the analogue ``band``; None: a digital leg without it)."""
    if rng.random() < 0.5:
        x = background(speed(x, rng.uniform(0.95, 1.05)), rng, babble, rng.uniform(10, 30))
    return telephone(gain(x, rng), rng, band=band)


def white_at(snr_db: float):
    return lambda x, rng, babble: add_noise(x, speech_dbfs(x), "white", snr_db, rng)


# Training views (random per clip) and test conditions (fixed), by name. "clean" is the clip itself.
VIEWS: dict[str, Callable] = {
    "phone": phone,
    "noisy": noisy,
    "line": lambda x, rng, babble: phone(x, rng, babble, band=None),
}
TESTS: dict[str, Callable] = {
    "tel": lambda x, rng, babble: telephone(
        x, rng, law="ULAW", loss=0.0
    ),  # 300–3400 Hz, 8 kHz μ-law
    "snr10": white_at(10.0),
    "snr0": white_at(0.0),
    "mulaw": lambda x, rng, babble: telephone(
        x, rng, law="ULAW", loss=0.0, band=None
    ),  # 8 kHz μ-law alone
}
