"""The supervisor's live view in a real headless Chromium (driven over the DevTools protocol) while
a simulated call streams into a real `rtser serve`. The screenshot goes to a temporary folder, or
to $RTSER_SCREENSHOT (``bench/figures.py`` sets it to docs/img/live-view.png)."""

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import build_call
from test_serve import Server, free_port, twilio_messages
from websockets.sync.client import connect

from rtser.audio.resample import resample

CUSTOMER_LABEL = '[data-call="CA-live-view"] [data-track="customer"] .label'

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)


class Browser:
    """Headless Chromium and one page, spoken to over the DevTools protocol."""

    def __init__(self, profile):
        port = free_port()
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--remote-debugging-port={port}",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                "--window-size=1400,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                pages = json.load(
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5)
                )
                page = next(p for p in pages if p["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.1)
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.id = 0

    def send(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.id:
                assert "error" not in msg, msg
                return msg["result"]

    def evaluate(self, expression):
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")

    def wait_for(self, expression, seconds=120):
        """Poll a JavaScript expression (it must evaluate to a plain value) until it is truthy."""
        for _ in range(seconds * 10):
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true in the page: {expression}")

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait()


@pytest.mark.skipif(
    CHROMIUM is None and not __import__("os").environ.get("CI"),
    reason="no Chromium (apt install chromium)",
)
def test_live_view_shows_the_call_its_tracks_and_labels(tmp_path, utterances):
    assert CHROMIUM, "CI needs Chromium: .ci/run installs it"
    server = Server(tmp_path)
    customer, _ = build_call(
        utterances[2:4] + utterances[2:4], gap_s=0.4
    )  # anger, fear, anger, fear
    agent, _ = build_call(
        utterances[:2] + utterances[4:5], gap_s=1.5
    )  # happiness, neutral, boredom
    speech8k, agent8k = resample(customer, 16000, 8000), resample(agent, 16000, 8000)

    def call():  # both tracks at real-time pace, so the page sees it live
        with connect(server.url("/twilio", "ws")) as ws:
            for msg in twilio_messages(
                "CA-live-view",
                speech8k,
                lang="de",
                tracks=("inbound", "outbound"),
                outbound=agent8k,
            ):
                ws.send(msg)
                if '"media"' in msg:
                    time.sleep(0.01)

    browser = Browser(tmp_path / "profile")
    try:
        browser.send("Page.enable")
        browser.send("Page.navigate", url=server.url("/?alert=2&minutes=0.25"))
        browser.wait_for("document.getElementById('status').textContent === 'live'")
        streaming = threading.Thread(target=call)
        streaming.start()
        browser.wait_for(
            f"document.querySelector('{CUSTOMER_LABEL}') && "
            f"!document.querySelector('{CUSTOMER_LABEL}').textContent.startsWith('—')"
        )
        browser.wait_for(
            'document.querySelectorAll(\'[data-call="CA-live-view"] .lane '
            "div:not(.roll)').length >= 4"
        )
        shot = browser.send("Page.captureScreenshot", format="png")["data"]
        view = browser.evaluate(
            'JSON.stringify([...document.querySelectorAll(\'[data-call="CA-live-view"] '
            ".track')].map(t => [t.dataset.track, t.querySelector('.label').textContent.trim()]))"
        )
        tracks = dict(json.loads(view))
        assert set(tracks) == {"customer", "agent"}
        labels = {"anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"}
        assert tracks["customer"].split()[0] in labels
        assert "↑" in tracks["customer"]  # the arousal of the current label
        streaming.join()
        browser.wait_for("!!document.querySelector('[data-ended=\"CA-live-view\"]')")
        assert "%" in browser.evaluate(
            "document.querySelector('[data-ended=\"CA-live-view\"]').textContent"
        )
    finally:
        browser.close()
        server.stop()
    Path(os.environ.get("RTSER_SCREENSHOT") or tmp_path / "live-view.png").write_bytes(
        base64.b64decode(shot)
    )
