"""``rtser serve``: the contact-center service. One port for HTTP and WebSocket (the supervisor's
live view, health, Prometheus metrics, calls, the event feed, AudioHook and Twilio), one TCP port
for AudioSocket.

SIGTERM (or Ctrl-C): stop accepting, flush every call and emit its ``call_end``, exit 0."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
import signal
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from ..bundle import Bundle
from ..errors import RtserError
from ..pipeline.site import Site
from ..report.labels import vocabulary
from . import audiohook, signature, twilio
from .audiosocket import handle as audiosocket_handle
from .hub import Hub, Track

log = logging.getLogger("rtser.serve")
MAX_FRAME = 256 * 1024  # bytes; a larger WebSocket message ends that connection (close 1009)
SHUTDOWN_S = 4.0  # calls get this long to flush on SIGTERM
WS_ROUTES = {"/audiohook": audiohook.handle, "/twilio": twilio.handle}
PAGE = Path(__file__).resolve().parent / "web" / "index.html"  # the supervisor's live view
VOCABULARY_SLOT = "/*LABELS*/null"  # where the page gets the label vocabulary


def _response(
    status: HTTPStatus, body: str, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    data = body.encode()
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return Response(status.value, status.phrase, headers, data)


def twilio_signature(token: str, url: str) -> str:
    """``X-Twilio-Signature`` of a request without a body: base64 of HMAC-SHA1 of its URL, keyed
    with the account's auth token (Twilio's request validation)."""
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


class Server:
    """The HTTP and WebSocket routes over a ``Hub``; every request needs ``api_key`` when set, a
    Twilio stream a valid ``X-Twilio-Signature`` when ``twilio_token`` is set, and an AudioHook
    connection a request signature when ``audiohook_secret`` is set."""

    def __init__(
        self,
        hub: Hub,
        api_key: str | None = None,
        twilio_token: str | None = None,
        audiohook_secret: bytes | None = None,
    ):
        self.hub, self.api_key, self.twilio_token = hub, api_key, twilio_token
        self.audiohook_secret = audiohook_secret
        self.nonces: dict[str, float] = {}  # of recent AudioHook signatures, against replays
        self.page = PAGE.read_text(encoding="utf-8").replace(
            VOCABULARY_SLOT, json.dumps(vocabulary())
        )

    def authorized(self, request) -> bool:
        if not self.api_key:
            return True
        given = (
            request.headers.get("X-API-KEY")
            or parse_qs(urlsplit(request.path).query).get("key", [""])[0]
        )
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def twilio_signed(self, request) -> bool:
        """Whether Twilio signed this stream: the signature of its ``wss://`` URL (Twilio always
        connects over TLS; a terminator in front of rtser may not)."""
        if not self.twilio_token:
            return True
        url = f"wss://{request.headers.get('Host', '')}{request.path}"
        given = request.headers.get("X-Twilio-Signature", "")
        return hmac.compare_digest(given, twilio_signature(self.twilio_token, url))

    def audiohook_unsigned(self, request) -> str | None:
        """Why an AudioHook connection's signature does not verify; ``None`` when it does."""
        if self.audiohook_secret is None:
            return None
        try:
            signature.verify(request.headers, request.path, self.audiohook_secret, self.nonces)
        except signature.SignatureError as e:
            return str(e)
        return None

    def process_request(self, connection, request):
        """Plain HTTP answers; ``None`` lets a WebSocket route go on to its handshake."""
        path = urlsplit(request.path).path
        if path == "/favicon.ico":  # browsers ask on every page view: no key, nothing to say
            return _response(HTTPStatus.NO_CONTENT, "")
        if path == "/healthz":  # load balancers ask without a key; it tells nothing about calls
            return _response(HTTPStatus.OK, "ok\n")
        if path == "/readyz":  # ... and here whether to send this box a new call
            full = self.hub.full()
            if full:
                return _response(HTTPStatus.SERVICE_UNAVAILABLE, f"full: {full}\n")
            return _response(HTTPStatus.OK, "ready\n")
        if not self.authorized(request):
            log.warning("refused path=%s reason=unauthorized", path)
            return _response(HTTPStatus.UNAUTHORIZED, "unauthorized: send X-API-KEY or ?key=\n")
        if path == "/":
            return _response(HTTPStatus.OK, self.page, "text/html; charset=utf-8")
        if path == "/metrics":
            return _response(
                HTTPStatus.OK,
                self.hub.metrics_text(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        if path == "/v1/calls":
            return _response(
                HTTPStatus.OK, json.dumps(self.hub.calls(), allow_nan=False), "application/json"
            )
        if path == "/twilio" and not self.twilio_signed(request):
            log.warning("refused path=%s reason='X-Twilio-Signature does not match'", path)
            return _response(HTTPStatus.FORBIDDEN, "X-Twilio-Signature does not match\n")
        if path in WS_ROUTES or path == "/v1/events":
            return None
        return _response(HTTPStatus.NOT_FOUND, f"no such path {path}\n")

    async def handle(self, ws) -> None:
        url = urlsplit(ws.request.path)
        if url.path == "/v1/events":
            await self.events(ws, parse_qs(url.query).get("call", [None])[0])
            return
        if url.path == "/audiohook" and (why := self.audiohook_unsigned(ws.request)):
            # as Genesys's reference server does: disconnect, then the client's close is answered
            log.warning("refused path=/audiohook reason=%r", why)
            await audiohook.unauthorized(ws)
            return
        await WS_ROUTES[url.path](ws, self.hub)

    async def events(self, ws, call: str | None) -> None:
        queue = self.hub.subscribe(call)
        try:
            while True:
                await ws.send(json.dumps(await queue.get(), allow_nan=False))
        except ConnectionClosed:
            pass
        finally:
            self.hub.unsubscribe(queue)


async def run(server: Server, host: str, port: int, audiosocket: dict[Track, int | None]) -> None:
    """Serve until SIGTERM or Ctrl-C: HTTP and WebSocket on ``port``, AudioSocket on the port of
    each track in ``audiosocket`` that has one."""
    hub = server.hub
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        ws = await ws_serve(
            server.handle,
            host,
            port,
            process_request=server.process_request,
            max_size=MAX_FRAME,
            compression=None,
        )
    except OSError as e:  # in use, or an address this machine does not have
        raise RtserError(
            f"cannot listen on {host} port {port}: {e.strerror}; pick another --port"
        ) from None
    tcp = []
    for track, tcp_port in audiosocket.items():
        if not tcp_port:
            continue
        try:
            tcp.append(
                await asyncio.start_server(
                    functools.partial(audiosocket_handle, hub=hub, track=track), host, tcp_port
                )
            )
        except OSError as e:
            ws.close()
            for listener in tcp:
                listener.close()
            option = "--audiosocket-port" if track == Track.CALLER else "--audiosocket-agent-port"
            raise RtserError(
                f"cannot listen on {host} port {tcp_port} (AudioSocket): {e.strerror}; pick "
                f"another {option}"
            ) from None
    log.info(
        "listening http=%s:%d audiosocket=%s languages=%s",
        host,
        port,
        ",".join(f"{host}:{p} ({t})" for t, p in audiosocket.items() if p) or "off",
        ",".join(hub.bundle.languages),
    )
    await stop.wait()
    log.info("shutting down: %d active call(s)", len(hub.active))
    ws.close(close_connections=False)  # stop accepting; live calls go on until flushed
    for listener in tcp:
        listener.close()
    # each protocol's goodbye first (AudioHook: disconnect, then the client's close is answered)
    await asyncio.gather(*(goodbye() for goodbye in list(hub.goodbyes)), return_exceptions=True)
    try:
        await asyncio.wait_for(hub.shutdown(), SHUTDOWN_S)
    except asyncio.TimeoutError:
        log.warning("shutdown: calls still flushing after %.0f s; leaving", SHUTDOWN_S)
    ws.close()
    try:
        await asyncio.wait_for(ws.wait_closed(), 1.0)
    except asyncio.TimeoutError:
        pass


def _calls(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise RtserError(f"--max-calls must be auto or a whole number of calls >= 1, not {value!r}")
    return int(value)


def _secret(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise RtserError(
            "--audiohook-secret must be the client secret as Genesys shows it (base64)"
        ) from None


def main(
    lang,
    host,
    port,
    audiosocket_port,
    audiosocket_agent_port,
    api_key,
    max_calls,
    latency_budget,
    events,
    webhook,
    webhook_events,
    webhook_secret,
    twilio_auth_token,
    audiohook_secret,
    site,
    bundle,
    threads,
) -> None:
    """``rtser serve``'s options (see ``rtser serve --help``): run until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        finals = webhook_events == "finals"
        limit = None if max_calls == "auto" else _calls(max_calls)
        hub = Hub(
            Bundle(bundle),
            lang,
            threads,
            limit,
            events,
            webhook,
            finals,
            latency_budget,
            webhook_secret,
            None if site == "off" else Site(None if site == "memory" else site),
        )
    except OSError as e:
        raise RtserError(
            f"--events {events}: cannot append to it ({e.strerror}); pick a writable file"
        ) from None
    if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s without --api-key: anyone who reaches this address can stream "
            "calls and read their events; set --api-key (or RTSER_API_KEY)",
            host,
        )
    secret = _secret(audiohook_secret) if audiohook_secret else None
    server = Server(hub, api_key, twilio_auth_token, secret)
    ports = {Track.CALLER: audiosocket_port, Track.AGENT: audiosocket_agent_port}
    asyncio.run(run(server, host, port, ports))
