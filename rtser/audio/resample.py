"""Streaming polyphase resampler (windowed-sinc, Kaiser), numpy only."""

from __future__ import annotations

from math import gcd

import numpy as np

BLOCK = 1 << 14  # input samples per step: bounds the (outputs x taps) product matrix to a few MB


class Resampler:
    """Convert a mono stream between sample rates, block by block; ``flush()`` ends the stream.
    Output sample ``n`` is aligned with input time ``n / dst`` (the filter delay is removed)."""

    def __init__(self, src_rate: int, dst_rate: int, zeros: int = 16):
        g = gcd(int(src_rate), int(dst_rate))
        self.up, self.down = int(dst_rate) // g, int(src_rate) // g
        self.taps = int(np.ceil(2 * zeros * max(1.0, self.down / self.up)))  # taps per phase
        length = self.taps * self.up
        self.centre = length // 2
        fc = 0.5 / max(self.up, self.down) * 0.94  # cutoff just under the lower Nyquist
        m = np.arange(length) - self.centre
        h = 2 * fc * np.sinc(2 * fc * m) * np.kaiser(length + 1, 8.6)[:length] * self.up
        # [p, j] = h[p + (taps - 1 - j) * up]: phase p's taps, ordered to meet oldest input first
        self.phases = np.ascontiguousarray(
            h.reshape(self.taps, self.up).T[:, ::-1], dtype=np.float32
        )
        self.buf = np.zeros(self.taps, np.float32)
        self.buf_start = -self.taps  # absolute input index of buf[0]
        self.n_in = self.n_out = 0

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def _emit(self, n_end: int) -> np.ndarray:
        if n_end <= self.n_out:
            return np.zeros(0, np.float32)
        t = np.arange(self.n_out, n_end, dtype=np.int64) * self.down + self.centre
        base, phase = t // self.up, t % self.up
        windows = np.lib.stride_tricks.sliding_window_view(self.buf, self.taps)
        y = np.einsum(
            "nk,nk->n", windows[base - self.taps + 1 - self.buf_start], self.phases[phase]
        )
        self.n_out = n_end
        keep_from = (n_end * self.down + self.centre) // self.up - self.taps + 1 - self.buf_start
        if keep_from > 0:
            self.buf, self.buf_start = self.buf[keep_from:], self.buf_start + keep_from
        return y.astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.identity:
            return x
        if len(x) > BLOCK:
            return np.concatenate([self.process(x[i : i + BLOCK]) for i in range(0, len(x), BLOCK)])
        self.buf = np.concatenate([self.buf, x])
        self.n_in += len(x)
        return self._emit((self.n_in * self.up - 1 - self.centre) // self.down + 1)

    def flush(self) -> np.ndarray:
        if self.identity:
            return np.zeros(0, np.float32)
        total = -(-self.n_in * self.up // self.down)  # ceil: every input instant gets its output
        self.buf = np.concatenate(
            [self.buf, np.zeros(self.centre // self.up + self.taps, np.float32)]
        )
        return self._emit(total)


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    r = Resampler(src_rate, dst_rate)
    return np.concatenate([r.process(x), r.flush()])
