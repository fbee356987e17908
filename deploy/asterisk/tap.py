"""Listen to Asterisk calls without taking them over: an ARI application that taps each call into
`rtser serve` as two tracks, the caller's voice and what the caller hears (the agent).

For every channel that enters the Stasis application (dialplan: ``Stasis(rtser-tap)``, then the
call goes on), it creates two snoop channels on it (``spy=in``: the caller's voice; ``spy=out``:
the audio sent to the caller) and bridges each to an ``externalMedia`` channel with the
AudioSocket encapsulation, both with one UUID: the caller's to rtser's ``--audiosocket-port``,
the agent's to its ``--audiosocket-agent-port``. Then the channel continues in the dialplan, and
the caller hears the call as before. The tap's channels go when the call hangs up.

    python3 tap.py --ari http://127.0.0.1:8088 --user rtser --password SECRET \\
                   --rtser 127.0.0.1 --port 9092 --agent-port 9093

Needs Python 3.10+ and ``websockets`` (``pip install 'rtser[serve]'`` has it); Asterisk 18+ with
res_ari, res_stasis_snoop, chan_audiosocket and an ARI user (http.conf, ari.conf). See
docs/callcenter.md."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import urllib.parse
import urllib.request
import uuid

from websockets.sync.client import connect

APP = "rtser-tap"
log = logging.getLogger("rtser.tap")


class Ari:
    """The ARI REST calls the tap makes."""

    def __init__(self, url: str, user: str, password: str):
        self.url = url.rstrip("/") + "/ari"
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method: str, path: str, **params) -> dict:
        log.debug("ari %s %s %s", method, path, params)
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(
            f"{self.url}{path}?{query}", method=method, headers={"Authorization": self.auth}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else {}


class Tap:
    """The channels and bridges tapping each call, by the tapped channel's id."""

    def __init__(self, ari: Ari, rtser: str, port: int, agent_port: int, audio: str):
        self.ari, self.audio = ari, audio
        self.targets = {"in": f"{rtser}:{port}", "out": f"{rtser}:{agent_port}"}
        self.calls: dict[str, list[tuple[str, str]]] = {}  # tapped channel -> [(kind, id)]
        self.ours: dict[str, str] = {}  # the tap's own channels (in Stasis too) -> tapped channel

    def start(self, channel: str) -> None:
        call_id, made = str(uuid.uuid4()), []
        try:
            for spy, target in self.targets.items():
                snoop = self.ari.call(
                    "POST", f"/channels/{channel}/snoop", spy=spy, app=APP, appArgs="tap"
                )["id"]
                self.ours[snoop] = channel
                made.append(("channel", snoop))
                media = self.ari.call(
                    "POST",
                    "/channels/externalMedia",
                    app=APP,
                    external_host=target,
                    encapsulation="audiosocket",
                    transport="tcp",
                    format=self.audio,
                    data=call_id,
                )["id"]
                self.ours[media] = channel
                made.append(("channel", media))
                bridge = self.ari.call("POST", "/bridges", type="mixing")["id"]
                made.append(("bridge", bridge))
                self.ari.call("POST", f"/bridges/{bridge}/addChannel", channel=f"{snoop},{media}")
            log.info("tapped channel=%s call=%s", channel, call_id)
        except OSError as e:  # rtser or Asterisk refused: the call goes on untapped
            log.warning("tap failed channel=%s reason=%r", channel, str(e))
        self.calls[channel] = made
        self.ari.call("POST", f"/channels/{channel}/continue")

    def stop(self, channel: str) -> None:
        for kind, ident in reversed(self.calls.pop(channel, [])):
            self.ours.pop(ident, None)
            try:
                self.ari.call("DELETE", f"/{kind}s/{ident}")
            except OSError:  # already gone with the call
                pass

    def handle(self, event: dict) -> None:
        channel = (event.get("channel") or {}).get("id")
        if event["type"] == "StasisStart" and channel not in self.ours:
            self.start(channel)
        elif event["type"] == "StasisEnd" and channel in self.ours:
            # the tapped channel left Stasis to go on with its call long ago: its snoop channels
            # end when it hangs up, and the rest of its tap goes with them
            self.stop(self.ours[channel])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ari", default="http://127.0.0.1:8088", help="Asterisk's HTTP server")
    ap.add_argument("--user", required=True, help="an ARI user (ari.conf)")
    ap.add_argument("--password", required=True)
    ap.add_argument("--rtser", default="127.0.0.1", help="the host rtser serve runs on")
    ap.add_argument("--port", type=int, default=9092, help="rtser's --audiosocket-port")
    ap.add_argument("--agent-port", type=int, default=9093, help="its --audiosocket-agent-port")
    ap.add_argument("--format", default="slin16", help="the audio sent to rtser (slin16: 16 kHz)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ari = Ari(args.ari, args.user, args.password)
    tap = Tap(ari, args.rtser, args.port, args.agent_port, args.format)
    events = ari.url.replace("http", "ws", 1) + "/events?" + urllib.parse.urlencode({"app": APP})
    with connect(events, additional_headers={"Authorization": ari.auth}) as ws:
        log.info("listening for calls in Stasis(%s)", APP)
        for message in ws:
            tap.handle(json.loads(message))


if __name__ == "__main__":
    main()
