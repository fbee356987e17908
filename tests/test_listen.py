"""`listen` against a fake input stream that plays real speech through the audio callback."""

import threading
import time

from conftest import build_call

from rtser.listen import listen


class FakeInputStream:
    """Quacks like sounddevice.InputStream: calls ``callback`` from its own thread."""

    def __init__(self, audio, samplerate, blocksize, callback, **_):
        self.audio, self.block, self.callback = audio, blocksize, callback
        self.done = threading.Event()

    def _play(self):
        for i in range(0, len(self.audio), self.block):
            self.callback(self.audio[i : i + self.block, None], self.block, None, None)
            time.sleep(0.0005)
        self.done.set()

    def __enter__(self):
        threading.Thread(target=self._play, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.done.wait()


def test_listen_runs_on_a_fake_microphone(recognizer, utterances):
    import io

    audio, _ = build_call(utterances[:2])
    out = io.StringIO()
    summary = listen(
        recognizer,
        sample_rate=16000,
        out=out,
        max_seconds=len(audio) / 16000 - 0.05,
        input_stream=lambda **kw: FakeInputStream(audio, **kw),
    )
    assert summary["segments"] == 2
    assert abs(summary["seconds"] - len(audio) / 16000) < 0.1
    assert summary["speech_s"] > 2 and abs(sum(summary["label_share"].values()) - 1) < 0.01
    assert "\r[" in out.getvalue()  # the live line
