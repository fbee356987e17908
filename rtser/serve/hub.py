"""The server's hub: every live call, the recognizers they share, and where events go. A ``Call``
holds one stream session per group of tracks; the protocol handlers feed it decoded audio.

Audio work runs on a thread pool, never on the event loop, in arrival order per call. Events go to
subscribers (bounded queues: a slow one loses its oldest events, counted), to an events file
(appended and flushed per event) and to a webhook (``webhook.Webhook``)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..audio import check_samples
from ..bundle import Bundle
from ..errors import RtserError
from ..pipeline.events import Event, EventType
from ..pipeline.recognizer import Recognizer
from ..pipeline.site import Site
from ..pipeline.stream import StreamSession
from ..report.summary import conversation, summarize
from .admission import LATENCY_BUDGET_S, Load
from .metrics import Metrics
from .webhook import Webhook

log = logging.getLogger("rtser.serve")
# Audio an admitted call may hold waiting for the pool: it is processed late, never dropped. At
# 16 kHz stereo float32 this is 15 MB; a call that reaches it ends with that reason.
MAX_BACKLOG_S = 120.0
SUBSCRIBER_QUEUE = 1000  # events per /v1/events subscriber
RECENT_CALLS = 100
EVENT_SCHEMA = 2  # the server's event fields (docs/callcenter.md, "Events"); 2: turns, arousal
SLOW_PUSH_S = float(os.environ.get("RTSER_SLOW_PUSH_S", "0"))  # tests: each push this much slower
HISTORY = 2000  # a live call's latest label events, for a live view opened mid-call
INTERIM = {EventType.LABEL.value, EventType.SEGMENT.value}  # what a final turn replaces
LABELLED = {kind.value for kind in EventType}


class Track(str, Enum):
    """Whose voice a stream of a call carries."""

    CUSTOMER = "customer"
    AGENT = "agent"
    CALLER = "caller"  # AudioSocket: one mixed leg

    def __str__(self) -> str:
        return self.value


Tracks = tuple[Track, ...]  # the tracks that arrive together, one channel each, in that order


class Refusal(str, Enum):
    CAPACITY = "capacity"
    LANGUAGE = "language"
    DUPLICATE = "duplicate"


class CallOverloaded(Exception):
    """An admitted call's backlog reached ``MAX_BACKLOG_S``: it ends rather than lose audio."""


class CallRefused(Exception):
    """A call the hub will not take; ``reason`` says why in kind, the message in words."""

    def __init__(self, reason: Refusal, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AudioBlock:
    """Decoded audio waiting for the pool: ``(frames, len(tracks))`` samples at ``rate``."""

    tracks: Tracks
    samples: np.ndarray
    rate: int
    received: float  # time.monotonic() when it arrived

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate


@dataclass(frozen=True)
class Switch:
    """From here on in the backlog, the call's audio is labelled by ``recognizer``; ``at``: the
    seconds of call audio received before it."""

    recognizer: Recognizer
    at: float


class Call:
    """One call: a stream session per group of tracks, events in order, a summary at the end."""

    def __init__(self, hub: Hub, call_id: str, recognizer: Recognizer, protocol: str):
        self.hub, self.id, self.rec, self.protocol = hub, call_id, recognizer, protocol
        self.sessions: dict[Tracks, StreamSession] = {}
        self.speech: list[dict] = []  # its segment and turn events: what the summary reads
        self.history: deque[dict] = deque(maxlen=HISTORY)
        self.received: dict[Tracks, float] = {}  # seconds of audio received, per group of tracks
        self.feeds: set[Track] = set()  # tracks whose connections are open (AudioSocket: one each)
        self.sessions_from = 0.0  # ... when the sessions began (a language switch starts new ones)
        self.tracks: set[Track] = set()
        self.gaps: list[tuple[float, float]] = []  # (received_s, seconds lost before it, in all)
        self.reason: str | None = None
        self.seq = 0
        self.started = time.time()
        self.ended: float | None = None
        self.done = asyncio.Event()  # set once finish() has emitted call_end
        self.backlog: asyncio.Queue[AudioBlock | Switch | None] = asyncio.Queue()
        self.backlog_s = 0.0
        self.worker = asyncio.get_running_loop().create_task(self._work())

    @property
    def lang(self) -> str:
        return self.rec.lang

    def push(self, tracks: Tracks, samples: np.ndarray, rate: int) -> None:
        """Queue decoded audio (called on the event loop; returns at once): ``(frames,
        len(tracks))`` samples of tracks that arrive together. Several tracks share one split
        session, so a track far quieter than another is taken as its echo. Bad audio is refused
        here, block by block, so that what queues can be merged into one push."""
        if self.ended is not None:
            return
        try:
            check_samples(samples, "audio")
        except RtserError as e:  # that block goes, the call goes on
            log.warning("call_audio call=%s tracks=%s reason=%r", self.id, _names(tracks), str(e))
            return
        block = AudioBlock(tracks, samples.reshape(-1, len(tracks)), rate, time.monotonic())
        if self.backlog_s + block.seconds > MAX_BACKLOG_S:
            raise CallOverloaded(
                f"the server fell {MAX_BACKLOG_S:.0f} s behind this call's audio; it ends "
                "rather than lose any"
            )
        self.hub.metrics.audio_s += block.seconds
        self.received[tracks] = self.received.get(tracks, 0.0) + len(block.samples) / rate
        self.tracks.update(tracks)
        self.backlog_s += block.seconds
        self.backlog.put_nowait(block)

    async def finish(self, reason: str = "hang-up") -> None:
        """Flush every track's last segment, emit ``call_end`` and leave the hub (idempotent: a
        second caller, such as SIGTERM's shutdown, waits for the first to finish)."""
        if self.ended is not None:
            await self.done.wait()
            return
        self.ended, self.reason = time.time(), reason
        try:
            self.backlog.put_nowait(None)
            await self.worker
            await self._close_sessions()
            summary, cues = summarize(self.speech), conversation(self.speech)
            end = {
                "type": "call_end",
                "start": 0.0,
                "end": round(self.duration, 3),
                "label": None,
                "probs": {},
            }
            self.emit({**end, "summary": summary, "cues": cues, "reason": reason}, track=None)
            self.hub.ended(self)
        finally:
            self.done.set()
        log.info(
            "call_end call=%s protocol=%s lang=%s seconds=%.1f reason=%r",
            self.id, self.protocol, self.lang, self.duration, reason,
        )  # fmt: skip

    @property
    def received_s(self) -> float:
        """Seconds of the call's audio received (its longest track, when tracks come apart)."""
        return max(self.received.values(), default=0.0)

    async def leave(self, reason: str, track: Track | None = None) -> None:
        """A connection of the call ended (``track``: the one it carried, when each track has its
        own); the last one ends the call."""
        self.feeds.discard(track)
        if not self.feeds:
            await self.finish(reason)

    @property
    def duration(self) -> float:
        """Seconds on the call's clock: the audio received, and the audio the platform lost."""
        return round(self.received_s + (self.gaps[-1][1] if self.gaps else 0.0), 3)

    async def _work(self) -> None:
        """Push queued audio, in arrival order per track. What queued while the pool was busy goes
        in one push per track: fewer, longer pushes when the box is loaded, the same events either
        way (they do not depend on how the audio is cut into pushes)."""
        done = False
        while not done:
            items = [await self.backlog.get()]
            while not self.backlog.empty():
                items.append(self.backlog.get_nowait())
            if None in items:  # finish() queued its sentinel last
                done, items = True, items[: items.index(None)]
            batches: dict[tuple[Tracks, int], list[AudioBlock]] = {}
            for item in items:
                if isinstance(item, Switch):  # what came before it is labelled first
                    await self._push_batches(batches)
                    batches = {}
                    await self._close_sessions()
                    self.rec, self.sessions_from = item.recognizer, item.at
                    continue
                self.backlog_s -= item.seconds
                batches.setdefault((item.tracks, item.rate), []).append(item)
            await self._push_batches(batches)

    async def _push_batches(self, batches: dict[tuple[Tracks, int], list[AudioBlock]]) -> None:
        for (tracks, rate), batch in batches.items():
            await self._push(tracks, rate, batch)

    async def _close_sessions(self) -> None:
        loop = asyncio.get_running_loop()
        for tracks, session in self.sessions.items():
            for e in await loop.run_in_executor(self.hub.pool, session.close):
                self._emit(tracks, e, time.monotonic())
        self.sessions = {}

    def switch(self, recognizer: Recognizer) -> None:
        """Label the audio from here on with another language's head (AudioHook ``update``); the
        audio before it keeps its head, its last segment and turn flushed."""
        if self.ended is None:
            self.backlog.put_nowait(Switch(recognizer, self.received_s))

    async def _push(self, tracks: Tracks, rate: int, blocks: list[AudioBlock]) -> None:
        session = self.sessions.get(tracks)
        if session is None:
            split = len(tracks) > 1
            session = self.sessions[tracks] = self.rec.stream(
                rate, channels=len(tracks), split=split
            )
        if rate != session.sample_rate:
            log.warning(
                "call_audio call=%s tracks=%s reason='rate changed from %d to %d Hz; audio "
                "dropped'",
                self.id, _names(tracks), session.sample_rate, rate,
            )  # fmt: skip
            return
        # no copy when the pool keeps up
        samples = (
            blocks[0].samples if len(blocks) == 1 else np.concatenate([b.samples for b in blocks])
        )
        loop = asyncio.get_running_loop()
        try:
            events, compute = await loop.run_in_executor(
                self.hub.pool, _timed, session.push, samples
            )
        except RtserError as e:
            log.warning("call_audio call=%s tracks=%s reason=%r", self.id, _names(tracks), str(e))
            return
        self.hub.load.record(compute, len(samples) / rate, time.monotonic() - blocks[0].received)
        for e in events:
            self._emit(tracks, e, blocks[0].received)

    def skip(self, seconds: float) -> None:
        """The platform lost ``seconds`` of the call's audio here (AudioHook ``discarded``): the
        events after it are timed on the call's clock, the lost stretch counted."""
        if seconds > 0:
            lost = self.gaps[-1][1] if self.gaps else 0.0
            self.gaps.append((self.received_s, lost + seconds))

    def _call_time(self, t: float) -> float:
        """A session's stream time on the call's clock: the audio received before the session
        began, and the audio the platform lost, counted."""
        t += self.sessions_from
        lost = [total for at, total in self.gaps if at <= t]
        return round(t + (lost[-1] if lost else 0.0), 3)

    def _emit(self, tracks: Tracks, e: Event, received: float) -> None:
        d = e.to_dict()
        self.hub.metrics.observe(time.monotonic() - received)
        d["start"], d["end"] = self._call_time(e.start), self._call_time(e.end)
        fields = ("type", "start", "end", "label", "probs", "arousal", "turn", "final")
        self.emit({k: d[k] for k in fields}, tracks[e.channel])

    def emit(self, fields: dict, track: Track | None) -> None:
        """Number a call event and hand it to the hub; segment events feed the summary."""
        event = {
            "schema": EVENT_SCHEMA,
            "call": self.id,
            "track": track and track.value,
            "lang": self.lang,
            "seq": self.seq,
            **fields,
        }
        self.seq += 1
        if event["type"] in (EventType.SEGMENT.value, EventType.TURN.value):
            self.speech.append(event)
        if event["type"] in LABELLED:
            self.history.append(event)
        self.hub.publish(event)

    def info(self) -> dict:
        return {
            "call": self.id,
            "protocol": self.protocol,
            "lang": self.lang,
            "started": self.started,
            "ended": self.ended,
            "duration_s": round(self.duration, 2),
            "tracks": sorted(t.value for t in self.tracks),
            "summary": summarize(self.speech),
            "cues": conversation(self.speech),
            "reason": self.reason,
            # what a live view opened now replays, so that it shows what it would have shown
            "events": list(self.history) if self.ended is None else [],
        }


def _timed(push, samples) -> tuple[list[Event], float]:
    if SLOW_PUSH_S:  # a test hook: a box slower than this one
        time.sleep(SLOW_PUSH_S)
    t = time.perf_counter()
    events = push(samples)
    return events, time.perf_counter() - t + SLOW_PUSH_S


def _names(tracks: Tracks) -> str:
    return "+".join(t.value for t in tracks)


@dataclass(frozen=True)
class Subscriber:
    queue: asyncio.Queue
    call: str | None  # only this call's events; None: every call's


class Hub:
    """Every live call, the recognizers they share, and where events go.

    Parameters:
        bundle: the models.
        lang: the language of calls that name none (None: such calls are refused).
        threads: worker threads for audio (one inference thread each).
        max_calls: calls beyond this many at once are refused; None: as many as the measured
            capacity carries within ``latency_budget`` (``admission.Load``).
        events_file: append every event to this JSONL file.
        webhook: POST every event as JSON to this URL ...
        webhook_finals: ... or only the final ones (turns) and the calls' start and end ...
        webhook_secret: ... signed with this secret (``webhook.signature``).
    """

    def __init__(
        self,
        bundle: Bundle,
        lang: str | None,
        threads: int = 2,
        max_calls: int | None = None,
        events_file: str | None = None,
        webhook: str | None = None,
        webhook_finals: bool = False,
        latency_budget: float = LATENCY_BUDGET_S,
        webhook_secret: str | None = None,
        site: Site | None = None,
    ):
        self.bundle, self.default_lang, self.max_calls = bundle, lang, max_calls
        self.site = site
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="rtser-audio")
        self.load = Load(max(1, threads), latency_budget)
        self.recognizers: dict[str, Recognizer] = {}
        self.metrics = Metrics()
        self.active: dict[str, Call] = {}
        self.recent: deque[Call] = deque(maxlen=RECENT_CALLS)
        self.subscribers: list[Subscriber] = []
        # what each open connection says when the server shuts down (its protocol's goodbye)
        self.goodbyes: set[Callable[[], Awaitable[None]]] = set()
        self.events_file = open(events_file, "a", encoding="utf-8") if events_file else None  # noqa: SIM115
        self.webhook = Webhook(webhook, self.metrics, webhook_secret) if webhook else None
        self.webhook_finals = webhook_finals
        if lang and bundle.code(lang) is None:
            known = ", ".join(bundle.languages)
            raise RtserError(f"--lang {lang}: not in the bundle; choose one of {known}")
        if lang:
            self.recognizer(lang)  # load before /healthz says ok

    def recognizer(self, lang: str | None) -> Recognizer:
        lang = lang or self.default_lang
        if lang is None:
            raise CallRefused(
                Refusal.LANGUAGE, "the call names no language and the server has no --lang"
            )
        lang = self.bundle.code(lang) or lang
        if lang not in self.bundle.languages:
            if "any" not in self.bundle.languages:
                known = ", ".join(self.bundle.languages)
                raise CallRefused(
                    Refusal.LANGUAGE, f"language {lang!r} is not in the bundle ({known})"
                )
            lang = "any"
        if lang not in self.recognizers:
            self.recognizers[lang] = Recognizer(lang, bundle=self.bundle, site=self.site)
        return self.recognizers[lang]

    def open_call(self, call_id: str, lang: str | None, protocol: str) -> Call:
        """A new call, or ``CallRefused`` (counted and logged) when it cannot be taken."""
        try:
            full = self.full()
            if full:
                raise CallRefused(Refusal.CAPACITY, full)
            if call_id in self.active:
                raise CallRefused(Refusal.DUPLICATE, f"call {call_id} is already active")
            call = Call(self, call_id, self.recognizer(lang), protocol)
        except CallRefused as e:
            self.metrics.refused[e.reason.value] = self.metrics.refused.get(e.reason.value, 0) + 1
            log.warning("call_refused call=%s protocol=%s reason=%r", call_id, protocol, str(e))
            where = {"schema": EVENT_SCHEMA, "call": call_id, "track": None, "protocol": protocol}
            times = {"start": 0.0, "end": 0.0, "label": None, "probs": {}}
            self.publish(
                {
                    **where,
                    "type": "call_rejected",
                    **times,
                    "reason": e.reason.value,
                    "info": str(e),
                }
            )
            raise
        self.metrics.admitted += 1
        self.active[call_id] = call
        log.info("call_start call=%s protocol=%s lang=%s", call_id, protocol, call.lang)
        start = {"type": "call_start", "start": 0.0, "end": 0.0, "label": None, "probs": {}}
        # which language the platform asked for, beside the head that labels it ("lang")
        call.emit({**start, "lang_requested": lang or self.default_lang}, track=None)
        return call

    def join_call(self, call_id: str, protocol: str, track: Track) -> Call:
        """A connection that carries one track: a new call, or the next track of the live call
        with this id (AudioSocket: the two directions of a passively tapped call, one connection
        each). A track that is already there is refused as a duplicate."""
        call = self.active.get(call_id)
        if call is None or call.protocol != protocol or track in call.feeds or call.ended:
            call = self.open_call(call_id, None, protocol)
        else:
            log.info("call_join call=%s protocol=%s track=%s", call_id, protocol, track)
        call.feeds.add(track)
        return call

    def full(self) -> str | None:
        """Why the next call would be refused for capacity (None: it would be admitted)."""
        if self.max_calls is not None:
            return (
                f"at capacity ({self.max_calls} calls)"
                if len(self.active) >= self.max_calls
                else None
            )
        behind = max((c.backlog_s for c in self.active.values()), default=0.0)
        return self.load.refusal(len(self.active), behind)

    def metrics_text(self) -> str:
        backlog = sum(c.backlog_s for c in self.active.values())
        capacity = self.max_calls if self.max_calls is not None else self.load.capacity()
        site = {k: r.baseline.turns for k, r in self.recognizers.items() if r.baseline}
        return self.metrics.text(len(self.active), capacity, self.load.lag_p95(), backlog, site)

    def ended(self, call: Call) -> None:
        self.active.pop(call.id, None)
        self.recent.append(call)

    def publish(self, event: dict) -> None:
        self.metrics.events += 1
        for s in self.subscribers:
            if s.call is None or s.call == event["call"]:
                if s.queue.full():
                    s.queue.get_nowait()
                    self.metrics.dropped_events += 1
                s.queue.put_nowait(event)
        if self.events_file:
            self.events_file.write(json.dumps(event, allow_nan=False) + "\n")
            self.events_file.flush()
        if self.webhook and not (self.webhook_finals and event["type"] in INTERIM):
            self.webhook.put(event)

    def subscribe(self, call: str | None) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.subscribers.append(Subscriber(q, call))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers = [s for s in self.subscribers if s.queue is not q]

    def calls(self) -> dict:
        return {
            "active": [c.info() for c in self.active.values()],
            "recent": [c.info() for c in reversed(self.recent)],
        }

    async def shutdown(self) -> None:
        await asyncio.gather(*(c.finish("server shutdown") for c in list(self.active.values())))
        if self.events_file:
            self.events_file.close()
        if self.webhook:  # deliver what is queued, within the shutdown's time
            await asyncio.to_thread(self.webhook.queue.join)
