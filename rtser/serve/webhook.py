"""Events POSTed to a webhook from a thread of their own, so a slow receiver never holds up
audio."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.request

from .metrics import Metrics

log = logging.getLogger("rtser.serve")
WEBHOOK_QUEUE = 1000  # events waiting; when full, the oldest is dropped (counted)
TRIES = 3
TIMEOUT_S = 5.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Rtser-Signature``: HMAC-SHA256 with the secret over ``timestamp.body``, hex. A receiver
    recomputes it, compares in constant time, and refuses an old ``X-Rtser-Timestamp`` (replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    """POSTs each event as JSON: tried ``TRIES`` times (0.2 s, 0.4 s apart), each with a
    ``TIMEOUT_S`` timeout; the oldest waiting event is dropped when ``WEBHOOK_QUEUE`` are
    waiting. With a ``secret``, each POST is signed (``signature``)."""

    def __init__(self, url: str, metrics: Metrics, secret: str | None = None):
        self.url, self.metrics, self.secret = url, metrics, secret
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
            headers = {"Content-Type": "application/json"}
            if self.secret:
                stamp = str(int(time.time()))
                headers["X-Rtser-Timestamp"] = stamp
                headers["X-Rtser-Signature"] = signature(self.secret, stamp, body)
            for attempt in range(TRIES):
                try:
                    req = urllib.request.Request(self.url, body, headers)
                    urllib.request.urlopen(req, timeout=TIMEOUT_S).close()
                    break
                except Exception as e:  # a webhook that fails must not stop the others
                    if attempt == TRIES - 1:
                        self.metrics.dropped_events += 1
                        log.warning(
                            "webhook %s: event dropped after %d tries (%s)", self.url, TRIES, e
                        )
                    time.sleep(0.2 * 2**attempt)
            self.queue.task_done()
