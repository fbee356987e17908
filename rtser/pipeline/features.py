"""Streaming features: every 16 kHz sample of a turn goes through each encoder once.

A turn's audio (from ``pad`` before its first segment's speech) is cut on a grid of ``CHUNK``
samples (2 s) that starts where that audio starts; the turn's later segments, and the pauses
between them, stay on the same grid. Each chunk is encoded with up to ``CONTEXT`` (1 s) of the
turn's audio before it (the first chunk has none), and the Whisper states of its own two seconds
are kept: one ``(L+1, D)`` state per 20 ms. GE2E embeds the voice once per turn, from its first
chunk: a turn is one speaker on one channel, so one embedding serves all its spans. The features
of a span ``[a, b)`` of the turn are the states of the frames that lie in it, concatenated, and
the turn's voice embedding. A chunk that ``b`` cuts is encoded up to ``b`` (with its context), so
the features of a span depend on the turn's audio up to ``b`` and nothing else: not on how far a
stream has run, nor on what came before the turn. A stream's turn, ``Recognizer.predict`` on a
clip of the same speech and the training cache (``train.features``) get the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

import numpy as np

from ..audio import SAMPLE_RATE
from .frontend import HOP, log_mel_of_power, mel_filters, power_spectrogram

CHUNK = 2 * SAMPLE_RATE  # new audio per encoder run
CONTEXT = SAMPLE_RATE  # audio before it that the encoder sees, states not kept
STEP = 2 * HOP  # one Whisper state per 20 ms (its second convolution has stride 2)
FRAMES = CHUNK // STEP  # states per whole chunk
STATE_DTYPE = np.float16  # kept states: half the memory; the training cache stores the same


class EncoderKind(str, Enum):
    """What an encoder graph reads and gives, named by its input."""

    WHISPER = "mel"  # Whisper's log-mel -> (L+1, 1, T, D) hidden states of every layer
    VOICE = "mels"  # GE2E's 40-band power mel -> a (1, 256) voice embedding

    @classmethod
    def of(cls, session) -> EncoderKind:
        return cls(session.get_inputs()[0].name)


class ChunkEncoder:
    """``{name: onnx session}`` -> ``encode(audio, new, voice)``: the states of the last ``new``
    samples of ``audio`` (what comes before them is context). Voice encoders (run only with
    ``voice``) take the 40-band power mel of the new part; Whisper encoders the log-mel of the
    whole input."""

    def __init__(self, sessions: dict):
        self.sessions = sessions
        self.kinds = {name: EncoderKind.of(sess) for name, sess in sessions.items()}

    def encode(self, audio: np.ndarray, new: int, voice: bool = True) -> dict[str, np.ndarray]:
        power = power_spectrogram(audio)
        context = len(audio) - new
        keep = slice(context // STEP, (context + new) // STEP)
        out, mel = {}, None
        for name, sess in self.sessions.items():
            if self.kinds[name] is EncoderKind.VOICE:
                if not voice:
                    continue
                mels = (mel_filters(40) @ power[:, context // HOP : (context + new) // HOP]).T
                out[name] = sess.run(None, {"mels": np.ascontiguousarray(mels)[None]})[0][0]
            else:
                mel = log_mel_of_power(power) if mel is None else mel
                out[name] = sess.run(None, {"mel": mel[None]})[0][:, 0, keep].astype(STATE_DTYPE)
        return out


class PartialChunk(NamedTuple):
    """The states of the last chunk that a span's end cut, and where it was cut."""

    end: int
    states: dict[str, np.ndarray]


class FeatureTrack:
    """One turn's chunk features, on the grid that starts at sample ``anchor``; computed when a
    span first needs them (or ``fill``), kept until ``reset``. ``audio(a, b)`` gives samples
    ``[a, b)``."""

    def __init__(
        self, encoder: ChunkEncoder, audio: Callable[[int, int], np.ndarray], anchor: int = 0
    ):
        self.encoder, self.audio = encoder, audio
        self.reset(anchor)

    def reset(self, anchor: int) -> None:
        """A new turn whose audio starts at ``anchor``."""
        self.anchor = anchor
        self.chunks: dict[int, dict[str, np.ndarray]] = {}
        self.partial: PartialChunk | None = None

    def chunk(self, k: int, end: int | None = None) -> dict[str, np.ndarray]:
        """Chunk ``k``'s states, whole or up to sample ``end`` within it."""
        start = self.anchor + k * CHUNK
        whole = end is None or end >= start + CHUNK
        if whole and k in self.chunks:
            return self.chunks[k]
        if not whole and self.partial and self.partial.end == end:
            return self.partial.states
        stop = start + CHUNK if whole else end
        states = self.encoder.encode(
            self.audio(max(self.anchor, start - CONTEXT), stop), stop - start, voice=k == 0
        )
        if whole:
            self.chunks[k] = states
        else:
            self.partial = PartialChunk(end, states)
        return states

    def fill(self, b: int) -> None:
        """Encode every chunk that ends by ``b`` and is not yet whole, while its audio is at hand
        (a pause inside a turn completes chunks that no segment's span asked for)."""
        for k in range((b - self.anchor) // CHUNK):
            self.chunk(k)

    def features(self, a: int, b: int) -> dict[str, np.ndarray]:
        """The head's inputs for samples ``[a, b)`` (``anchor <= a``, at least one 20 ms frame):
        Whisper ``(L+1, frames, D)`` float32 and the GE2E ``(256,)`` unit vector of the turn's
        first chunk (up to ``b``)."""
        if a < self.anchor:
            raise ValueError(f"span [{a}, {b}) starts before the turn's audio ({self.anchor})")
        first, stop = (
            -(-(a - self.anchor) // STEP),
            (b - self.anchor) // STEP,
        )  # frames wholly inside
        if stop <= first:
            raise ValueError(f"span [{a}, {b}) holds no whole {STEP}-sample frame")
        parts: dict[str, list] = {}
        for k in range(first // FRAMES, (stop - 1) // FRAMES + 1):
            states = self.chunk(k, min(b, self.anchor + (k + 1) * CHUNK))
            lo, hi = max(first - k * FRAMES, 0), min(stop - k * FRAMES, FRAMES)
            for name, x in states.items():
                if self.encoder.kinds[name] is EncoderKind.WHISPER:
                    parts.setdefault(name, []).append(x[:, lo:hi])
        out = {name: np.concatenate(xs, axis=1, dtype=np.float32) for name, xs in parts.items()}
        voice = self.chunk(0, min(b, self.anchor + CHUNK))
        kinds = self.encoder.kinds
        out.update(
            {n: x.astype(np.float32) for n, x in voice.items() if kinds[n] is EncoderKind.VOICE}
        )
        return out


def clip_features(
    encoder: ChunkEncoder, audio: np.ndarray, a: int, b: int
) -> dict[str, np.ndarray]:
    """The features of ``audio[a:b]`` as a turn of those bounds in a stream gets them."""
    a, b = max(0, a), min(b, len(audio))
    return FeatureTrack(encoder, lambda i, j: audio[i:j], a).features(a, b)
