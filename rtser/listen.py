"""Live microphone: sounddevice callback -> queue -> worker pushing into a stream session."""

from __future__ import annotations

import queue
import sys
import threading
import time

from .errors import RtserError
from .pipeline.events import Event, EventType
from .report.formatting import top_probs
from .report.summary import summarize


def sounddevice():
    try:
        import sounddevice as sd
    except OSError:
        raise RtserError(
            "PortAudio is not installed, so no microphone can be opened; install it "
            "(Debian/Ubuntu: apt install libportaudio2, macOS: brew install portaudio)"
        ) from None
    return sd


def input_devices() -> list[dict]:
    sd = sounddevice()
    return [
        dict(d, index=i) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0
    ]


def default_rate(device) -> int:
    sd = sounddevice()
    try:
        return int(sd.query_devices(device, "input")["default_samplerate"])
    except (ValueError, sd.PortAudioError):
        which = f"input device {device!r}" if device is not None else "default input device"
        raise RtserError(
            f"there is no {which}; connect a microphone or pick one from 'rtser listen "
            "--list-devices' with --device N"
        ) from None


def live_line(e: Event) -> str:
    return f"\r[{e.end:8.1f} s] {e.label:10} {top_probs(e.probs)}".ljust(72)


def listen(
    recognizer,
    device=None,
    sample_rate: int | None = None,
    out=sys.stderr,
    input_stream=None,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
) -> dict:
    """Run until Ctrl-C, ``stop`` is set or ``max_seconds`` of audio; return a session summary.
    ``input_stream`` defaults to ``sounddevice.InputStream`` (tests pass a fake one)."""
    if input_stream is None:
        sample_rate = sample_rate or default_rate(device)
        input_stream = sounddevice().InputStream
    sample_rate = sample_rate or 16000
    blocks: queue.Queue = queue.Queue()
    session = recognizer.stream(sample_rate)
    stop = stop or threading.Event()
    spoken: list[Event] = []

    def on_audio(
        indata, frames, time_info, status
    ):  # audio thread: copy and hand over, nothing else
        blocks.put(indata.copy())

    def handle(events):
        for e in events:
            if e.type is not EventType.LABEL:
                spoken.append(e)  # the summary reads the turns (and counts the segments)
            if e.final:  # a turn settles: its line stays
                out.write(f"\r{e.start:8.1f}–{e.end:.1f} s  {e.label}".ljust(72) + "\n")
            else:  # rolling labels and provisional segments: the live line
                out.write(live_line(e))
            out.flush()

    started = time.monotonic()
    try:
        with input_stream(
            samplerate=sample_rate,
            channels=1,
            dtype="float32",
            device=device,
            blocksize=sample_rate // 50,
            callback=on_audio,
        ):
            out.write(
                f"listening ({recognizer.lang}: {', '.join(recognizer.labels)}); Ctrl-C to stop\n"
            )
            while not stop.is_set() and (max_seconds is None or session.stream_time < max_seconds):
                try:
                    handle(session.push(blocks.get(timeout=0.1)))
                except queue.Empty:
                    continue
    except KeyboardInterrupt:
        pass
    while not blocks.empty():  # audio already captured is still analysed
        handle(session.push(blocks.get()))
    handle(session.close())
    return {
        "seconds": round(session.stream_time, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        **summarize(spoken).get(0, {"segments": 0}),
    }
