"""AudioHook's request signature: an HTTP message signature (draft-ietf-httpbis-message-signatures,
HMAC-SHA256 keyed with the client secret set in Genesys) over the WebSocket upgrade request.

Only what AudioHook signs is read: ``Signature-Input`` names the covered components and the
parameters, ``Signature`` holds the MAC, both RFC 8941 dictionaries. The signature base is built
again from the parsed fields, so a signer that is not strict does not verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

# what Genesys covers; a signature that leaves one out does not authenticate the call
REQUIRED = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
MAX_AGE_S = 10  # a signature older than this is refused (Genesys signs each connection anew)
CLOCK_SKEW_S = 3
MIN_NONCE = 22  # Genesys's nonce is 18 random bytes in base64 (24 characters)

KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
NUMBER = re.compile(r"-?\d{1,15}(\.\d{1,3})?")
BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
STRING = re.compile(r'"((?:[^"\\]|\\["\\])*)"')


class Token(str):
    """An RFC 8941 token: serialised bare, unlike a string."""


class SignatureError(ValueError):
    """Why a request's signature does not verify."""


class _Parser:
    """RFC 8941 dictionaries: items and inner lists, each with parameters."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, what: str):
        raise SignatureError(f"malformed {what} at character {self.pos}")

    def skip(self, chars: str = " \t") -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def match(self, pattern: re.Pattern, what: str) -> re.Match:
        m = pattern.match(self.text, self.pos)
        if m is None:
            self.fail(what)
        self.pos = m.end()
        return m

    def bare(self):
        c = self.peek()
        if c == '"':
            return re.sub(r"\\(.)", r"\1", self.match(STRING, "string").group(1))
        if c == ":":
            return base64.b64decode(self.match(BYTES, "byte sequence").group(1), validate=True)
        if c == "?":
            value = self.text[self.pos + 1 : self.pos + 2]
            if value not in ("0", "1"):
                self.fail("boolean")
            self.pos += 2
            return value == "1"
        if c == "-" or c.isdigit():
            m = self.match(NUMBER, "number")
            return float(m.group()) if m.group(1) else int(m.group())
        return Token(self.match(TOKEN, "token").group())

    def params(self) -> list[tuple[str, object]]:
        out = []
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(KEY, "parameter key").group()
            value = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare()
            out.append((key, value))
        return out

    def member(self):
        """An item ``(value, params)`` or an inner list ``([items], params)``."""
        if self.peek() != "(":
            return self.bare(), self.params()
        self.pos += 1
        items = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return items, self.params()
            items.append((self.bare(), self.params()))
            if self.peek() not in (" ", ")"):
                self.fail("inner list")

    def dictionary(self) -> dict:
        out = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.match(KEY, "dictionary key").group()
            if self.peek() == "=":
                self.pos += 1
                out[key] = self.member()
            else:
                out[key] = (True, self.params())
            self.skip()
            if self.pos == len(self.text):
                break
            if self.peek() != ",":
                self.fail("dictionary")
            self.pos += 1
            self.skip()
            if self.pos == len(self.text):
                self.fail("dictionary (a trailing comma)")
        return out


def _bare(value) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, Token | int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return f":{base64.b64encode(value).decode()}:"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _params(params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_bare(v)}" for k, v in params)


def _inner_list(items, params) -> str:
    return "(" + " ".join(_bare(v) + _params(p) for v, p in items) + ")" + _params(params)


def _field(value: str) -> str:
    return re.sub(r"[ \t]*\r\n[ \t]+", " ", value.strip())


def verify(headers, target: str, secret: bytes, seen: dict[str, float], now: float | None = None):
    """Check one upgrade request's signature, or raise ``SignatureError`` with the reason.

    ``headers`` maps the request's header names, in any case, to their values; ``target`` is its
    path and query, ``secret`` the decoded client secret, and ``seen`` the nonces of recent
    signatures (expiry time by nonce), so a captured request cannot be replayed while its
    signature is still fresh."""
    now = time.time() if now is None else now
    headers = {name.lower(): value for name, value in headers.items()}
    inputs = _Parser(_field(headers.get("signature-input", ""))).dictionary()
    signatures = _Parser(_field(headers.get("signature", ""))).dictionary()
    if not inputs:
        raise SignatureError("the request is not signed (no Signature-Input)")
    label, (components, params) = next(iter(inputs.items()))
    mac = signatures.get(label, (None,))[0]
    if not isinstance(components, list) or not isinstance(mac, bytes):
        raise SignatureError(f"no signature {label!r} of a list of components")
    p = dict(params)
    created, expires, nonce = p.get("created"), p.get("expires"), p.get("nonce")
    if p.get("alg", "hmac-sha256") != "hmac-sha256":
        raise SignatureError(f"algorithm {p['alg']!r} is not hmac-sha256")
    if not isinstance(created, int) or created > now + CLOCK_SKEW_S:
        raise SignatureError("no creation time, or one in the future")
    if created + MAX_AGE_S + CLOCK_SKEW_S < now or (
        isinstance(expires, int) and expires + CLOCK_SKEW_S < now
    ):
        raise SignatureError("the signature has expired")
    if not isinstance(nonce, str) or len(nonce) < MIN_NONCE:
        raise SignatureError("no nonce, or one too short")
    if p.get("keyid") != headers.get("x-api-key"):
        raise SignatureError("the signature's keyid is not the X-API-KEY")
    names = [name for name, _ in components]
    if missing := [name for name in REQUIRED if name not in names]:
        raise SignatureError(f"the signature does not cover {', '.join(missing)}")
    lines = []
    for name, component_params in components:
        if component_params or not isinstance(name, str) or names.count(name) > 1:
            raise SignatureError(f"component {name!r} is not supported")
        if name == "@request-target":
            value = target
        elif name == "@authority":
            value = headers.get("host", "")
        elif name.startswith("@"):
            raise SignatureError(f"component {name!r} is not supported")
        else:
            value = headers.get(name)
            if value is None:
                raise SignatureError(f"the signed header {name!r} is missing")
        lines.append(f"{_bare(name)}: {_field(value)}")
    lines.append(f'"@signature-params": {_inner_list(components, params)}')
    expected = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SignatureError("the signature does not match the client secret")
    for old in [n for n, until in seen.items() if until < now]:
        del seen[old]
    if nonce in seen:
        raise SignatureError("the signature was used before (a replayed request)")
    seen[nonce] = created + MAX_AGE_S + CLOCK_SKEW_S
