"""AudioHook's request signature, on a request signed by Genesys's reference client library
(``SignatureBuilder`` of ``../shared/vendor/audiohook-reference``, with a fixed creation time and
nonce): what it signs verifies, and a change to any of it does not."""

import base64

import pytest

from rtser.serve.signature import SignatureError, verify

SECRET = base64.b64decode("TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
TARGET = "/audiohook?x=1"
CREATED = 1764547200
SIGNED = {
    "Host": "rtser.example:8443",
    "Audiohook-Organization-Id": "d7934305-0972-4844-938e-9060eef73d05",
    "Audiohook-Session-Id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "Audiohook-Correlation-Id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "X-API-KEY": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
    "Signature-Input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" '
    '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
    'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpcyBpcyBhIHVuaXF1ZSBub25jZQ==";'
    'alg="hmac-sha256";created=1764547200;expires=1764547230',
    "Signature": "sig1=:U6Eq+8kcY86QMFMYNOnwL+mYo1ml8IFV65/nncPT6xA=:",
}


def test_what_genesys_signs_verifies_once():
    seen = {}
    verify(SIGNED, TARGET, SECRET, seen, now=CREATED + 1)
    with pytest.raises(SignatureError, match="used before"):  # the same request replayed
        verify(SIGNED, TARGET, SECRET, seen, now=CREATED + 2)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"secret": b"another secret"}, "does not match"),
        ({"target": "/audiohook?x=2"}, "does not match"),
        ({"Host": "elsewhere:8443"}, "does not match"),
        ({"Audiohook-Session-Id": "another session"}, "does not match"),
        ({"X-API-KEY": "another key"}, "keyid"),
        ({"now": CREATED + 60}, "expired"),
        ({"now": CREATED - 60}, "future"),
        ({"Signature-Input": None, "Signature": None}, "not signed"),
        ({"Signature": "sig1=:AAAA:"}, "does not match"),
        ({"Signature": "sig1=(:AAAA:)"}, "no signature"),
        ({"Signature-Input": 'sig1=("@authority");created=1764547200'}, "malformed|nonce|cover"),
        ({"Signature-Input": "sig1=(\"@request-target\" 'x')"}, "malformed"),
    ],
)
def test_a_changed_request_is_refused_with_its_reason(change, why):
    headers = {k: v for k, v in {**SIGNED, **change}.items() if v is not None}
    headers = {k: v for k, v in headers.items() if k not in ("secret", "target", "now")}
    with pytest.raises(SignatureError, match=why):
        verify(
            headers,
            change.get("target", TARGET),
            change.get("secret", SECRET),
            {},
            now=change.get("now", CREATED + 1),
        )


def test_header_names_are_read_in_any_case():
    verify({k.lower(): v for k, v in SIGNED.items()}, TARGET, SECRET, {}, now=CREATED + 1)
