"""The server's Prometheus metrics (``GET /metrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    events: int = 0
    audio_s: float = 0.0
    dropped_audio_s: float = 0.0  # stays 0: an admitted call's audio is processed late, not lost
    dropped_events: int = 0
    admitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # by reason
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        """One event's delay from its audio's arrival to its emission."""
        bucket = next(
            (i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS)
        )
        self.latency[bucket] += 1
        self.latency_sum += seconds

    def text(
        self,
        active: int,
        capacity: int | None,
        lag_p95: float,
        backlog_s: float,
        site_turns: dict[str, int],
    ) -> str:
        """Prometheus' text format, with the gauges of the moment: ``active`` calls, the measured
        ``capacity`` (calls; -1 before it is measured), the recent ``lag_p95`` from audio to its
        events, the audio ``backlog_s`` waiting for the pool (seconds, all calls) and the turns
        each language's site baseline has learnt from."""
        lines = []
        for name, kind, value in (
            ("rtser_active_calls", "gauge", active),
            ("rtser_capacity_calls", "gauge", -1 if capacity is None else capacity),
            ("rtser_lag_p95_seconds", "gauge", f"{lag_p95:.3f}"),
            ("rtser_backlog_seconds", "gauge", f"{backlog_s:.3f}"),
            ("rtser_admitted_calls_total", "counter", self.admitted),
            ("rtser_events_total", "counter", self.events),
            ("rtser_audio_seconds_total", "counter", f"{self.audio_s:.3f}"),
            ("rtser_dropped_audio_seconds_total", "counter", f"{self.dropped_audio_s:.3f}"),
            ("rtser_dropped_events_total", "counter", self.dropped_events),
            ("rtser_rejected_calls_total", "counter", sum(self.refused.values())),
        ):
            lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        lines.append("# TYPE rtser_refused_calls_total counter")
        lines += [
            f'rtser_refused_calls_total{{reason="{r}"}} {n}'
            for r, n in sorted(self.refused.items())
        ]
        lines.append("# TYPE rtser_site_turns gauge")
        lines += [f'rtser_site_turns{{lang="{k}"}} {n}' for k, n in sorted(site_turns.items())]
        lines.append("# TYPE rtser_event_latency_seconds histogram")
        total = 0
        for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), self.latency):
            total += n
            lines.append(f'rtser_event_latency_seconds_bucket{{le="{bound}"}} {total}')
        lines += [
            f"rtser_event_latency_seconds_sum {self.latency_sum:.4f}",
            f"rtser_event_latency_seconds_count {total}",
        ]
        return "\n".join(lines) + "\n"
