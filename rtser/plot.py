"""``--plot``: per-channel emotion bands over the waveform envelope (matplotlib, optional)."""
from __future__ import annotations

import numpy as np

from .errors import RtserError
from .events import Event


class Envelope:
    """Min/max of the waveform per 50 ms, per channel, accumulated block by block."""

    def __init__(self, sample_rate: int, bin_s: float = 0.05):
        self.bin = max(1, int(sample_rate * bin_s))
        self.rest: np.ndarray | None = None
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.bin_s = self.bin / sample_rate

    def add(self, block: np.ndarray) -> None:
        x = block if self.rest is None else np.concatenate([self.rest, block])
        n = len(x) // self.bin * self.bin
        folded = x[:n].reshape(-1, self.bin, x.shape[1])
        self.lo.append(folded.min(axis=1))
        self.hi.append(folded.max(axis=1))
        self.rest = x[n:]


def pyplot():
    """matplotlib's pyplot on a file backend; called before the analysis so a missing install fails early."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RtserError("--plot needs matplotlib: pip install 'rtser[plot]'") from None
    return plt


def plot_timeline(path: str, env: Envelope, events: list[Event], labels: list[str], split: bool) -> None:
    plt = pyplot()
    lo, hi = np.concatenate(env.lo), np.concatenate(env.hi)
    if not split:
        lo, hi = lo.mean(axis=1, keepdims=True), hi.mean(axis=1, keepdims=True)
    t = np.arange(len(lo)) * env.bin_s
    colours = dict(zip(labels, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(lo.shape[1], 1, figsize=(12, 2.2 * lo.shape[1]), squeeze=False, sharex=True)
    for ch, ax in enumerate(axes[:, 0]):
        ax.fill_between(t, lo[:, ch], hi[:, ch], color="0.55", lw=0)
        for e in events:
            if e.channel == ch and e.type == "segment":
                ax.axvspan(e.start, e.end, color=colours[e.label], alpha=0.35)
                ax.text((e.start + e.end) / 2, 0.92, e.label, ha="center", va="top", fontsize=8,
                        transform=ax.get_xaxis_transform())
        ax.set_ylabel(f"channel {ch}" if split else "mix")
        ax.set_ylim(-1, 1)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k], alpha=0.35) for k in labels]
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
