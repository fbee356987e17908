"""Live calls for ``rtser serve``: a call's tracks (one stream session each), its events, and the hub
that runs many calls at once. Protocol-free: the protocol handlers feed decoded audio in.

Audio work runs on a thread pool, never on the event loop, in arrival order per call. Events go to
subscribers (bounded queues: a slow one loses its oldest events, counted), to an events file
(appended and flushed per event) and to a webhook (a thread that POSTs with retries; never blocks
audio)."""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .audio import check_samples
from .bundle import Bundle
from .errors import RtserError
from .recognizer import Recognizer
from .summary import summarize

log = logging.getLogger("rtser.serve")
MAX_BACKLOG_S = 10.0       # audio waiting for the pool per call; beyond it the oldest is dropped
SUBSCRIBER_QUEUE = 1000    # events per /v1/events subscriber
WEBHOOK_QUEUE = 1000
RECENT_CALLS = 100
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CallRefused(Exception):
    """A call the hub will not take (capacity, language); the message is the reason."""


@dataclass
class Metrics:
    events: int = 0
    audio_s: float = 0.0
    dropped_audio_s: float = 0.0
    dropped_events: int = 0
    rejected: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.latency[next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))] += 1
        self.latency_sum += seconds

    def text(self, active: int) -> str:
        lines = ["# TYPE rtser_active_calls gauge", f"rtser_active_calls {active}",
                 "# TYPE rtser_events_total counter", f"rtser_events_total {self.events}",
                 "# TYPE rtser_audio_seconds_total counter", f"rtser_audio_seconds_total {self.audio_s:.3f}",
                 "# TYPE rtser_dropped_audio_seconds_total counter",
                 f"rtser_dropped_audio_seconds_total {self.dropped_audio_s:.3f}",
                 "# TYPE rtser_dropped_events_total counter", f"rtser_dropped_events_total {self.dropped_events}",
                 "# TYPE rtser_rejected_calls_total counter", f"rtser_rejected_calls_total {self.rejected}",
                 "# TYPE rtser_event_latency_seconds histogram"]
        total = 0
        for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), self.latency):
            total += n
            lines.append(f'rtser_event_latency_seconds_bucket{{le="{bound}"}} {total}')
        lines += [f"rtser_event_latency_seconds_sum {self.latency_sum:.4f}", f"rtser_event_latency_seconds_count {total}"]
        return "\n".join(lines) + "\n"


class Webhook:
    """POSTs each event as JSON from its own thread: retried 3 times, the oldest dropped when behind."""

    def __init__(self, url: str, metrics: Metrics):
        self.url, self.metrics = url, metrics
        self.queue: queue.Queue = queue.Queue(WEBHOOK_QUEUE)
        threading.Thread(target=self._run, daemon=True, name="rtser-webhook").start()

    def put(self, event: dict) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.queue.task_done()
                    self.metrics.dropped_events += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            body = json.dumps(self.queue.get(), allow_nan=False).encode()
            for attempt in range(3):
                try:
                    req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
                    urllib.request.urlopen(req, timeout=5).close()
                    break
                except Exception as e:  # a webhook that fails must not stop the others
                    if attempt == 2:
                        self.metrics.dropped_events += 1
                        log.warning("webhook %s: event dropped after 3 tries (%s)", self.url, e)
                    time.sleep(0.2 * 2 ** attempt)
            self.queue.task_done()


class Call:
    """One call: a stream session per track, events in order, a summary at the end."""

    def __init__(self, hub: "Hub", call_id: str, recognizer: Recognizer, protocol: str):
        self.hub, self.id, self.rec, self.protocol = hub, call_id, recognizer, protocol
        self.sessions: dict[str, object] = {}
        self.segments: list[dict] = []
        self.seq = 0
        self.started = time.time()
        self.ended: float | None = None
        self.backlog: asyncio.Queue = asyncio.Queue()
        self.backlog_s = 0.0
        self.worker = asyncio.get_running_loop().create_task(self._work())

    @property
    def lang(self) -> str:
        return self.rec.lang

    def push(self, tracks: str | tuple[str, ...], samples: np.ndarray, rate: int) -> None:
        """Queue decoded audio (called on the event loop; returns at once): one track's samples, or
        ``(frames, channels)`` of several tracks that arrive together (they share one split session,
        so a track far quieter than another is taken as its echo). Bad audio is refused here, block by
        block, so that what queues can be merged into one push."""
        if self.ended is not None:
            return
        try:
            check_samples(samples, "audio")
        except RtserError as e:  # that block goes, the call goes on
            log.warning("call_audio call=%s track=%s reason=%r", self.id, tracks, str(e))
            return
        seconds = len(samples) / rate * (len(tracks) if isinstance(tracks, tuple) else 1)
        self.hub.metrics.audio_s += seconds
        while self.backlog_s + seconds > MAX_BACKLOG_S and not self.backlog.empty():
            item = self.backlog.get_nowait()  # the pool is behind: the oldest audio goes
            self.backlog_s -= item[3]
            self.hub.metrics.dropped_audio_s += item[3]
        self.backlog_s += seconds
        self.backlog.put_nowait((tracks, samples, rate, seconds, time.monotonic()))

    async def finish(self, reason: str = "hang-up") -> None:
        """Flush every track's last segment, emit ``call_end`` and leave the hub (idempotent)."""
        if self.ended is not None:
            return
        self.ended = time.time()
        self.backlog.put_nowait(None)
        await self.worker
        loop = asyncio.get_running_loop()
        for key, session in self.sessions.items():
            for e in await loop.run_in_executor(self.hub.pool, session.close):
                self._emit(key, e, time.monotonic())
        self.emit({"type": "call_end", "start": 0.0, "end": round(self.duration, 3), "label": None, "probs": {},
                   "summary": summarize(self.segments), "reason": reason}, track=None)
        self.hub.ended(self)
        log.info("call_end call=%s protocol=%s lang=%s seconds=%.1f reason=%r", self.id, self.protocol, self.lang,
                 self.duration, reason)

    @property
    def duration(self) -> float:
        return max((s.stream_time for s in self.sessions.values()), default=0.0)

    async def _work(self) -> None:
        """Push queued audio, in arrival order per track. What queued while the pool was busy goes in
        one push per track: fewer, longer pushes when the box is loaded, the same events either way
        (they do not depend on how the audio is cut into pushes)."""
        done = False
        while not done:
            items = [await self.backlog.get()]
            while not self.backlog.empty():
                items.append(self.backlog.get_nowait())
            if None in items:  # finish() queued its sentinel last
                done, items = True, items[:items.index(None)]
            batches: dict[tuple, list] = {}
            for key, samples, rate, seconds, received in items:
                self.backlog_s -= seconds
                batches.setdefault((key, rate, samples.shape[1:]), [received]).append(samples)
            for (key, rate, _), (received, *blocks) in batches.items():
                await self._push(key, rate, blocks, received)

    async def _push(self, key, rate: int, blocks: list[np.ndarray], received: float) -> None:
        session = self.sessions.get(key)
        if session is None:
            multi = isinstance(key, tuple)
            session = self.sessions[key] = self.rec.stream(rate, channels=len(key) if multi else 1, split=multi)
        if rate != session.sample_rate:
            log.warning("call_audio call=%s track=%s reason='rate changed from %d to %d Hz; audio dropped'",
                        self.id, key, session.sample_rate, rate)
            return
        samples = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # no copy when the pool keeps up
        try:
            events = await asyncio.get_running_loop().run_in_executor(self.hub.pool, session.push, samples)
        except RtserError as e:
            log.warning("call_audio call=%s track=%s reason=%r", self.id, key, str(e))
            return
        for e in events:
            self._emit(key, e, received)

    def _emit(self, key: str | tuple[str, ...], e, received: float) -> None:
        d = e.to_dict()
        self.hub.metrics.observe(time.monotonic() - received)
        self.emit({k: d[k] for k in ("type", "start", "end", "label", "probs")},
                  key[e.channel] if isinstance(key, tuple) else key)

    def emit(self, fields: dict, track: str | None) -> None:
        event = {"call": self.id, "track": track, "lang": self.lang, "seq": self.seq, **fields}
        self.seq += 1
        if event["type"] == "segment":  # what the summary reads
            self.segments.append(event)
        self.hub.publish(event)

    def info(self) -> dict:
        return {"call": self.id, "protocol": self.protocol, "lang": self.lang, "started": self.started,
                "ended": self.ended, "duration_s": round(self.duration, 2),
                "tracks": sorted({t for k in self.sessions for t in (k if isinstance(k, tuple) else (k,))}),
                "summary": summarize(self.segments)}


class Hub:
    """Every live call, the recognizers they share, and where events go."""

    def __init__(self, bundle: Bundle, lang: str | None, threads: int = 2, max_calls: int | None = None,
                 events_file: str | None = None, webhook: str | None = None):
        self.bundle, self.default_lang, self.max_calls = bundle, lang, max_calls
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="rtser-audio")
        self.recognizers: dict[str, Recognizer] = {}
        self.metrics = Metrics()
        self.active: dict[str, Call] = {}
        self.recent: deque[Call] = deque(maxlen=RECENT_CALLS)
        self.subscribers: list[tuple[asyncio.Queue, str | None]] = []
        self.events_file = open(events_file, "a", encoding="utf-8") if events_file else None
        self.webhook = Webhook(webhook, self.metrics) if webhook else None
        if lang:
            self.recognizer(lang)  # load before /healthz says ok

    def recognizer(self, lang: str | None) -> Recognizer:
        lang = lang or self.default_lang
        if lang is None:
            raise CallRefused("the call names no language and the server has no --lang")
        if lang not in self.bundle.languages:
            fallback = "any" if "any" in self.bundle.languages else None
            if fallback is None:
                raise CallRefused(f"language {lang!r} is not in the bundle ({', '.join(self.bundle.languages)})")
            lang = fallback
        if lang not in self.recognizers:
            self.recognizers[lang] = Recognizer(lang, bundle=self.bundle)
        return self.recognizers[lang]

    def open_call(self, call_id: str, lang: str | None, protocol: str) -> Call:
        """A new call, or ``CallRefused`` (counted and logged) when it cannot be taken."""
        try:
            if self.max_calls is not None and len(self.active) >= self.max_calls:
                raise CallRefused(f"at capacity ({self.max_calls} calls)")
            if call_id in self.active:
                raise CallRefused(f"call {call_id} is already active")
            call = Call(self, call_id, self.recognizer(lang), protocol)
        except CallRefused as e:
            self.metrics.rejected += 1
            log.warning("call_refused call=%s protocol=%s reason=%r", call_id, protocol, str(e))
            raise
        self.active[call_id] = call
        log.info("call_start call=%s protocol=%s lang=%s", call_id, protocol, call.lang)
        call.emit({"type": "call_start", "start": 0.0, "end": 0.0, "label": None, "probs": {}}, track=None)
        return call

    def ended(self, call: Call) -> None:
        self.active.pop(call.id, None)
        self.recent.append(call)

    def publish(self, event: dict) -> None:
        self.metrics.events += 1
        for q, only in self.subscribers:
            if only is None or only == event["call"]:
                if q.full():
                    q.get_nowait()
                    self.metrics.dropped_events += 1
                q.put_nowait(event)
        if self.events_file:
            self.events_file.write(json.dumps(event, allow_nan=False) + "\n")
            self.events_file.flush()
        if self.webhook:
            self.webhook.put(event)

    def subscribe(self, call: str | None) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.subscribers.append((q, call))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers = [(s, c) for s, c in self.subscribers if s is not q]

    def calls(self) -> dict:
        return {"active": [c.info() for c in self.active.values()], "recent": [c.info() for c in reversed(self.recent)]}

    async def shutdown(self) -> None:
        await asyncio.gather(*(c.finish("server shutdown") for c in list(self.active.values())))
        if self.events_file:
            self.events_file.close()
        if self.webhook:  # deliver what is queued, within the shutdown's time
            await asyncio.to_thread(self.webhook.queue.join)
