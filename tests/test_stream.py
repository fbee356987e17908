"""Streaming on real speech: utterances found, labels consistent with predict(), chunking-proof."""
import threading

import numpy as np
import pytest
import soundfile as sf

from conftest import build_call
from rtser.resample import resample


def segments(events):
    return [e for e in events if e.type == "segment"]


def run(recognizer, audio, sr=16000, **kw):
    s = recognizer.stream(sr, **kw)
    return s.push(audio) + s.close()


def test_every_utterance_found_with_predict_labels(recognizer, utterances):
    audio, marks = build_call(utterances)
    found = segments(run(recognizer, audio))
    assert len(found) == len(utterances)
    for e, (_, onset), u in zip(found, marks, utterances):
        assert abs(e.start - onset) <= 0.15
        assert e.label == recognizer.predict(u).label
        assert set(e.probs) == set(recognizer.labels) and abs(sum(e.probs.values()) - 1) < 1e-4


def test_mulaw_telephony_8k(recognizer, utterances, tmp_path):
    audio, marks = build_call(utterances)
    path = tmp_path / "call.wav"
    sf.write(path, resample(audio, 16000, 8000), 8000, subtype="ULAW")
    narrow, sr = sf.read(path, dtype="float32")
    found = segments(run(recognizer, narrow, sr))
    assert len(found) == len(utterances)
    frame = sr * 30 // 1000  # cut one VAD frame wider: the 8 kHz filter rings just outside the clip
    for e, (start, onset) in zip(found, marks):
        assert abs(e.start - onset) <= 0.15
        clip = narrow[int(start * sr) - frame: int(start * sr) + int(2.0 * sr) + frame]
        assert e.label == recognizer.predict(clip, sr).label


def test_random_chunks_equal_one_push(recognizer, utterances):
    audio, _ = build_call(utterances[:3])
    whole = run(recognizer, audio)
    s = recognizer.stream(16000)
    rng, i, chunked = np.random.default_rng(0), 0, []
    while i < len(audio):
        n = int(rng.integers(1, 9000))
        chunked += s.push(audio[i:i + n])
        i += n
    chunked += s.close()
    assert [e.to_dict() for e in chunked] == [e.to_dict() for e in whole]
    assert any(e.type == "label" for e in whole)


def test_pcm_bytes_and_callback(recognizer, utterances):
    audio, _ = build_call(utterances[:2])
    pcm = (audio * 32767).astype("<i2").tobytes()
    seen = []
    s = recognizer.stream(16000, callback=seen.append)
    events = []
    for i in range(0, len(pcm), 640):  # 20 ms telephony frames
        events += s.push(pcm[i:i + 640])
    events += s.close()
    assert seen == events and len(segments(events)) == 2
    assert [e.seq for e in events] == list(range(len(events)))


def test_stereo_split_puts_events_on_their_channel(recognizer, utterances):
    agent, _ = build_call(utterances[:2])
    customer, _ = build_call(utterances[2:4])
    shift = len(agent) // 2 // 480 * 480  # the customer answers half-way through, overlapping
    n = max(len(agent), shift + len(customer))
    left = np.pad(agent, (0, n - len(agent)))
    right = np.pad(customer, (shift, n - shift - len(customer)))
    stereo = np.stack([left, right], axis=1)
    found = segments(run(recognizer, stereo, channels=2, split=True))
    left_only = segments(run(recognizer, left))
    right_only = segments(run(recognizer, right))
    assert [(e.start, e.label) for e in found if e.channel == 0] == [(e.start, e.label) for e in left_only]
    assert [(e.start, e.label) for e in found if e.channel == 1] == [(e.start, e.label) for e in right_only]
    assert len(left_only) == 2 and len(right_only) == 2


def test_rolling_labels_are_smoothed_and_timed(recognizer, utterances):
    audio, _ = build_call(utterances[:2])
    labels = [e for e in run(recognizer, audio) if e.type == "label"]
    assert labels and all(e.end - e.start <= recognizer.window_s + 1e-6 for e in labels)
    assert all(b.end > a.end for a, b in zip(labels, labels[1:]))


def test_silence_gives_no_events(recognizer):
    assert run(recognizer, np.zeros(16000 * 5, np.float32)) == []


def test_push_from_threads(recognizer, utterances):
    audio, _ = build_call(utterances[:2])
    s = recognizer.stream(16000)
    chunks = np.array_split(audio, 40)
    lock, out = threading.Lock(), []

    def feed(part):  # pushes serialise; one feeder keeps order
        for c in part:
            with lock:
                out.extend(s.push(c))

    t = threading.Thread(target=feed, args=(chunks,))
    t.start()
    t.join()
    out += s.close()
    assert len(segments(out)) == 2


def test_bad_api_input(recognizer):
    from rtser import RtserError
    with pytest.raises(RtserError, match="NaN"):
        recognizer.predict(np.full(16000, np.nan, np.float32))
    with pytest.raises(RtserError, match="empty"):
        recognizer.predict(np.zeros(0, np.float32))
    with pytest.raises(RtserError, match="odd number"):
        recognizer.stream().push(b"\x00\x01\x02")
