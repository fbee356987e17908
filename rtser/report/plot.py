"""``--plot``: per-channel emotion bands over the waveform envelope (matplotlib, optional)."""

from __future__ import annotations

import numpy as np

from ..errors import require
from ..pipeline.events import Event
from .formatting import clock
from .labels import PALETTE


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
    """matplotlib's pyplot on a file backend; called before the analysis so a missing install fails
    early."""
    require("matplotlib", "plot", "--plot needs matplotlib").use("Agg")
    return require("matplotlib.pyplot", "plot", "--plot needs matplotlib")


TICK_STEPS_S = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def plot_timeline(
    path: str, env: Envelope, events: list[Event], labels: list[str], split: bool, title: str = ""
) -> None:
    """Per channel: the waveform envelope over a lane of segments coloured by label, each as opaque
    as its confidence. No text on the lanes (it collides on real calls); the legend lists the
    labels that occur. Reads the same for a 2-minute and a 30-minute call."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    lo, hi = np.concatenate(env.lo), np.concatenate(env.hi)
    if not split:
        lo, hi = lo.mean(axis=1, keepdims=True), hi.mean(axis=1, keepdims=True)
    t = np.arange(len(lo)) * env.bin_s
    segments = [e for e in events if e.final]  # a lane of final turns
    colours = {
        k: PALETTE.get(k, plt.get_cmap("tab10").colors[i % 10]) for i, k in enumerate(labels)
    }
    n = lo.shape[1]
    fig, axes = plt.subplots(
        2 * n,
        1,
        figsize=(14, 1.9 * n + 1.1),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1] * n, "hspace": 0.08},
    )
    for channel in range(n):
        wave, lane = axes[2 * channel, 0], axes[2 * channel + 1, 0]
        peak = max(float(np.abs(np.concatenate([lo[:, channel], hi[:, channel]])).max()), 1e-3)
        wave.fill_between(t, lo[:, channel] / peak, hi[:, channel] / peak, color="0.6", lw=0)
        wave.set_ylim(-1.05, 1.05)
        wave.set_yticks([])
        wave.set_ylabel(
            f"channel {channel}" if split else "mix", rotation=0, ha="right", va="center"
        )
        for e in segments:
            if e.channel == channel:
                confidence = e.probs.get(e.label, 0.0)
                lane.axvspan(
                    e.start, e.end, color=colours[e.label], alpha=0.25 + 0.75 * confidence, lw=0
                )
                wave.axvspan(e.start, e.end, color=colours[e.label], alpha=0.08, lw=0)
        lane.set_yticks([])
        lane.set_ylabel("label", rotation=0, ha="right", va="center", fontsize=8, color="0.4")
        for ax in (wave, lane):
            for side in ("top", "right", "left"):
                ax.spines[side].set_visible(False)
    end = max(t[-1] if len(t) else 0, 1)
    axes[-1, 0].set_xlim(0, end)
    step = next((s for s in TICK_STEPS_S if end / s <= 10), TICK_STEPS_S[-1])  # round clock times
    axes[-1, 0].xaxis.set_major_locator(MultipleLocator(step))
    axes[-1, 0].xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: clock(x, 1 if step < 1 else 0))
    )
    axes[-1, 0].set_xlabel("time (m:ss); segment colour = label, opacity = confidence")
    present = [k for k in labels if any(e.label == k for e in segments)]
    if present:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in present]
        fig.legend(
            handles, present, loc="upper right", ncol=len(present), fontsize=9, frameon=False
        )
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.subplots_adjust(
        left=0.08,
        right=0.99,
        top=1 - 0.55 / fig.get_figheight(),
        bottom=0.45 / fig.get_figheight() + 0.05,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
