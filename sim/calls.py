"""Calls built from corpus clips: clips in a row or as agent/customer turns with the other side's
voice as echo, and the non-speech signals a call carries (tones, DTMF, music-like hold audio). The
line itself (G.711 at 8 kHz, noise at a given SNR) is ``train.augment``'s, the same the heads train
on. numpy only; every generator takes a seeded rng."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.augment import SR, at_level, brown, hum, white

DTMF = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "0": (941, 1336),
    "*": (941, 1209),
    "#": (941, 1477),
}


@dataclass
class Utterance:
    start: float  # the clip's place in the call (s)
    end: float
    speech: tuple[float, float]  # where its speech is (s, by energy)
    label: str
    overlapped: bool = False
    pause: float = 0.0  # its longest pause inside the speech (s, by energy)


def loud_frames(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """Which 10 ms frames of a clip are within 30 dB of its loudest: its speech, by energy."""
    hop = sr // 100
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    energy = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-20)
    return energy > energy.max() - 30


def speech_extent(x: np.ndarray, sr: int = SR) -> tuple[float, float]:
    """First and last 10 ms frame within 30 dB of the clip's loudest (seconds)."""
    loud = np.flatnonzero(loud_frames(x, sr))
    return loud[0] / 100, (loud[-1] + 1) / 100


def longest_pause(x: np.ndarray, sr: int = SR) -> float:
    """The longest run of frames more than 30 dB below the clip's loudest between its first and last
    loud frame (seconds)."""
    loud = np.flatnonzero(loud_frames(x, sr))
    return float(np.diff(loud).max() - 1) / 100 if len(loud) > 1 else 0.0


def tone(seconds: float, freqs, level_db: float = -15.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return at_level(sum(np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32), level_db)


def dtmf(digits: str, on: float = 0.1, off: float = 0.1, level_db: float = -12.0) -> np.ndarray:
    parts = [
        np.concatenate([tone(on, DTMF[d], level_db), np.zeros(int(off * SR), np.float32)])
        for d in digits
    ]
    return np.concatenate(parts)


def music(seconds: float, rng, level_db: float = -20.0) -> np.ndarray:
    """Hold-music-like audio: chords of harmonic notes with vibrato and decaying envelopes, on a
    beat."""
    n, out, beat = int(seconds * SR), np.zeros(int(seconds * SR), np.float32), int(0.5 * SR)
    t = np.arange(beat * 2) / SR
    for start in range(0, n, beat):
        root = 220 * 2 ** (rng.integers(0, 12) / 12)
        note = np.zeros(len(t))
        for ratio in (1, 5 / 4, 3 / 2):
            f = root * ratio * (1 + 0.004 * np.sin(2 * np.pi * 5 * t))
            phase = 2 * np.pi * np.cumsum(f) / SR
            note += sum(np.sin(k * phase) / k**1.5 for k in range(1, 6))
        note *= np.exp(-t * 2.5)
        seg = note[: n - start].astype(np.float32)
        out[start : start + len(seg)] += seg
    return at_level(out, level_db)


def non_speech(rng, noise_db: float = -60.0) -> list[tuple[str, np.ndarray]]:
    """The stretches of a call that hold no speech, each with a name."""
    line = lambda s: at_level(white(int(s * SR), rng), noise_db)
    return [
        ("dial tone 350+440 Hz", tone(4.0, (350, 440))),
        (
            "busy tone 480+620 Hz",
            np.concatenate([np.concatenate([tone(0.5, (480, 620)), line(0.5)]) for _ in range(4)]),
        ),
        ("300 Hz tone", tone(3.0, (300,), -10)),
        ("1 kHz tone", tone(3.0, (1000,), -10)),
        ("DTMF digits", dtmf("0123456789*#", level_db=-10)),
        ("hold music", music(12.0, rng)),
        ("mains hum -30 dBFS", at_level(hum(int(4 * SR), rng), -30)),
        ("white noise -35 dBFS", at_level(white(int(4 * SR), rng), -35)),
        ("brown noise -30 dBFS", at_level(brown(int(4 * SR), rng), -30)),
        ("line noise -60 dBFS", line(4.0)),
    ]


def build_call(
    clips: list[tuple[np.ndarray, str]],
    rng,
    gap=(0.3, 2.0),
    noise_db: float = -60.0,
    between: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[Utterance]]:
    """Clips in a row, 0.3–2 s of quiet line noise between them (or the ``between`` stretches)."""
    parts, utts, t = [], [], 0
    for i, (x, label) in enumerate(clips):
        g = between[i] if between is not None else np.zeros(int(rng.uniform(*gap) * SR), np.float32)
        parts += [g, x]
        t += len(g)
        a, b = speech_extent(x)
        utts.append(
            Utterance(
                t / SR, (t + len(x)) / SR, (t / SR + a, t / SR + b), label, pause=longest_pause(x)
            )
        )
        t += len(x)
    tail = np.zeros(int(rng.uniform(*gap) * SR), np.float32)
    call = np.concatenate(parts + [tail])
    return call + at_level(white(len(call), rng), noise_db), utts


def build_stereo(
    clips: list[tuple[np.ndarray, str]],
    rng,
    echo_db: float = -20.0,
    overlap_share: float = 0.15,
    noise_db: float = -60.0,
) -> tuple[np.ndarray, list[list[Utterance]]]:
    """Agent (channel 0) and customer (channel 1) take turns. An ``overlap_share`` of the turns
    start before the other side's speech ends, where both clips' speech is long enough: half by
    0.1–0.3 s (a quick take-over), half by 0.7–1.2 s (an interruption), so that no overlap lies
    within 0.2 s of the 0.5 s a cue needs to count as an interruption, where a boundary off by a
    few frames would decide it. Each channel carries the other side's voice ``echo_db`` lower."""
    n = sum(len(x) for x, _ in clips) + int(2.5 * SR * len(clips))
    sides = np.zeros((2, n), np.float32)
    utts: list[list[Utterance]] = [[], []]
    t = int(0.5 * SR)
    for i, (x, label) in enumerate(clips):
        ch = i % 2
        a, b = speech_extent(x)
        overlapped = False
        if i > 0 and rng.random() < overlap_share:
            before = utts[1 - ch][-1]
            free = utts[ch][-1].end if utts[ch] else 0.0  # this side's own last clip is over
            room = min(
                0.8 * min(before.speech[1] - before.speech[0], b - a),
                before.speech[1] - a - free,
            )
            lead = rng.uniform(0.7, 1.2) if rng.random() < 0.5 else rng.uniform(0.1, 0.3)
            if lead <= room:
                t = round((before.speech[1] - lead - a) * SR)
                before.overlapped = overlapped = True
        sides[ch, t : t + len(x)] += x
        utts[ch].append(
            Utterance(
                t / SR,
                (t + len(x)) / SR,
                (t / SR + a, t / SR + b),
                label,
                overlapped,
                longest_pause(x),
            )
        )
        t += len(x) + int(rng.uniform(0.3, 2.0) * SR)
    sides = sides[:, :t]
    g = 10 ** (echo_db / 20)
    mixed = np.stack([sides[0] + g * sides[1], sides[1] + g * sides[0]])
    mixed += np.stack([at_level(white(mixed.shape[1], rng), noise_db) for _ in range(2)])
    return mixed.T.copy(), utts
