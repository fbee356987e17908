"""Streaming on real speech: utterances found, labels consistent with predict(), chunking-proof."""

import json
import shutil
import threading

import numpy as np
import pytest
import soundfile as sf
from conftest import build_call, continuous_speech

from rtser import Recognizer, RtserError
from rtser.audio.resample import resample
from rtser.bundle import DEFAULT
from rtser.pipeline.events import Prediction


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
        clip = narrow[int(start * sr) - frame : int(start * sr) + int(2.0 * sr) + frame]
        assert e.label == recognizer.predict(clip, sr).label


def test_random_chunks_equal_one_push(recognizer, utterances):
    audio = np.concatenate([continuous_speech(utterances), build_call(utterances[:3])[0]])
    whole = run(recognizer, audio)
    s = recognizer.stream(16000)
    rng, i, chunked = np.random.default_rng(0), 0, []
    while i < len(audio):
        n = int(rng.integers(1, 9000))
        chunked += s.push(audio[i : i + n])
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
        events += s.push(pcm[i : i + 640])
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
    assert [(e.start, e.label) for e in found if e.channel == 0] == [
        (e.start, e.label) for e in left_only
    ]
    assert [(e.start, e.label) for e in found if e.channel == 1] == [
        (e.start, e.label) for e in right_only
    ]
    assert len(left_only) == 2 and len(right_only) == 2


def test_rolling_labels_are_smoothed_and_timed(recognizer, utterances):
    audio = continuous_speech(utterances)
    labels = [e for e in run(recognizer, audio) if e.type == "label"]
    assert labels and all(e.end - e.start <= recognizer.window_s + 1e-6 for e in labels)
    assert all(b.end > a.end for a, b in zip(labels, labels[1:]))


def test_silence_gives_no_events(recognizer):
    assert run(recognizer, np.zeros(16000 * 5, np.float32)) == []


def test_sessions_on_threads_equal_serial_runs(recognizer, utterances):
    """Four call legs pushed at once from four threads through one Recognizer (one shared set of
    ONNX sessions) get exactly the events each leg gets alone."""
    calls = [build_call(utterances[i : i + 2])[0] for i in range(4)]
    alone = [[e.to_dict() for e in run(recognizer, audio)] for audio in calls]
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def leg(i):
        s, out = recognizer.stream(16000), []
        start.wait()
        for chunk in np.array_split(calls[i], 60):
            out += s.push(chunk)
        results[i] = [e.to_dict() for e in out + s.close()]

    threads = [threading.Thread(target=leg, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == alone and all(segments_of(r) for r in results)


def test_push_and_close_race_from_two_threads(recognizer, utterances):
    """close() from another thread while pushes go on: no crash, no event twice, and the pusher is
    told that its audio came after close. The pusher keeps pushing until it is told so."""
    audio, _ = build_call(utterances[:2])
    chunks = np.array_split(audio, 200)
    s = recognizer.stream(16000)
    pushed, errors, first_push = [], [], threading.Event()

    def feed():
        try:
            for i in range(10 * len(chunks)):  # past the audio's end: until close() stops it
                pushed.extend(s.push(chunks[i % len(chunks)]))
                first_push.set()
        except RtserError as e:
            errors.append(e)

    t = threading.Thread(target=feed)
    t.start()
    assert first_push.wait(60)
    closed = s.close()
    t.join()
    seqs = [e.seq for e in pushed + closed]
    assert sorted(seqs) == list(range(len(seqs)))
    assert len(errors) == 1 and "after close" in str(errors[0])


def segments_of(dicts):
    return [d for d in dicts if d["type"] == "segment"]


def test_a_callback_may_close_its_own_session(recognizer, utterances):
    audio, _ = build_call(utterances[:2])
    s = recognizer.stream(16000, callback=lambda e: s.close())
    t = threading.Thread(target=lambda: s.push(audio), daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), "push() deadlocked in a callback that closes the session"
    assert s.closed


def test_a_raising_callback_leaves_the_session_consistent(recognizer, utterances):
    """A callback that raises on every rolling label: each push that delivered one raises, the
    other pushes return their events, and every event still reaches the callback once, in order."""
    audio, _ = build_call(utterances[:3])
    expected = [e.to_dict() for e in run(recognizer, audio)]
    assert any(e["type"] == "label" for e in expected)  # else the callback would never raise
    seen, returned, raised = [], [], 0

    def flaky(e):
        seen.append(e.to_dict())
        if e.type == "label":
            raise ValueError("subscriber failed")

    s = recognizer.stream(16000, callback=flaky)
    for chunk in np.array_split(audio, 30):
        try:
            returned += s.push(chunk)
        except ValueError:
            raised += 1
    try:
        returned += s.close()
    except ValueError:
        raised += 1
    assert seen == expected  # every event reached the callback once, in order, seq unbroken
    assert raised >= 1 and all(e.type != "label" for e in returned)
    assert [e.to_dict() for e in returned] == [
        d for d in expected if d["seq"] in {e.seq for e in returned}
    ]


def test_lone_clip_segment_equals_predict(recognizer, data_dir):
    """A clip streamed alone (speech up to its edges) gets predict()'s label, probabilities and
    arousal."""
    from conftest import clip

    from rtser.audio import load

    compared = 0
    for name in ["08a01Na.flac", "03a01Fa.flac", "03a02Wb.flac", "08a02Ac.flac", "03a04Ad.flac"]:
        x = load(clip("emodb", name))
        found = segments(run(recognizer, x))
        p = recognizer.predict(x)
        if len(found) == 1:
            assert found[0].label == p.label
            np.testing.assert_allclose(
                list(found[0].probs.values()), list(p.probs.values()), atol=1e-5
            )
            assert found[0].arousal == pytest.approx(p.arousal, abs=1e-5)
            compared += 1
    assert compared >= 3


def test_speech_the_gate_hears_as_music_gets_no_event_and_no_label(utterances, tmp_path):
    """The real gate passes every utterance (above); one that hears music everywhere (its
    threshold at 1) leaves the stream no segment, rolling label or turn, and predict no label."""
    bundle = tmp_path / "bundle"
    shutil.copytree(DEFAULT, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["speech"]["threshold"] = 1.0
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    deaf = Recognizer("de", bundle)
    audio, _ = build_call(utterances)
    assert run(deaf, audio) == []
    assert deaf.predict(utterances[0]) == Prediction(None, {})


def test_every_event_carries_an_arousal_between_0_and_1(recognizer, utterances):
    events = run(recognizer, continuous_speech(utterances))
    assert {e.type for e in events} == {"label", "segment", "turn"}
    assert all(0 <= e.arousal <= 1 and 0 <= e.to_dict()["arousal"] <= 1 for e in events)


def test_no_empty_segments_at_max_length_cuts(data_dir):
    """A max-length cut inside a short pause must not leave a segment with start == end."""
    from conftest import ROOT

    from rtser import Recognizer, VadConfig
    from rtser.audio import load

    x = load(ROOT / "examples" / "ravdess-anger-actor01.flac")
    for max_s in (0.9, 1.2, 1.5, 1.8):
        rec = Recognizer("en", vad=VadConfig(max_segment_s=max_s))
        events = run(rec, x)
        assert all(e.end > e.start for e in events)
        assert all(e.end - e.start <= max_s + 1e-6 for e in segments(events))


def test_rolling_labels_stay_inside_their_segment(recognizer, utterances):
    audio = np.concatenate([continuous_speech(utterances[:3]), continuous_speech(utterances[3:])])
    events = run(recognizer, audio)
    for seg in segments(events):
        inside = [
            e for e in events if e.type == "label" and seg.start <= e.start and e.seq < seg.seq
        ]
        assert inside and all(e.end <= seg.end + 1e-9 for e in inside)


def test_bad_rates_and_scales_are_refused_alike(recognizer):
    x = np.zeros(16000, np.float32)
    for rate in (0, 1000, -8000, 8000.5):
        with pytest.raises(RtserError, match="sample rate"):
            recognizer.predict(x, rate)
        with pytest.raises(RtserError, match="sample rate"):
            recognizer.stream(rate)
    loud = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 1e18
    with pytest.raises(RtserError, match="outside"):
        recognizer.predict(loud)
    with pytest.raises(RtserError, match="outside"):
        recognizer.stream().push(loud)


def test_one_huge_push_takes_bounded_memory(recognizer):
    """Ten minutes pushed at once are processed a second at a time: no copy of the input is made."""
    import tracemalloc

    x = np.zeros(44100 * 600, np.float32)  # 10 min at 44.1 kHz (106 MB)
    s = recognizer.stream(44100)
    tracemalloc.start()
    assert s.push(x) == []
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6


def test_bad_api_input(recognizer):
    from rtser import RtserError

    with pytest.raises(RtserError, match="NaN"):
        recognizer.predict(np.full(16000, np.nan, np.float32))
    with pytest.raises(RtserError, match="empty"):
        recognizer.predict(np.zeros(0, np.float32))
    with pytest.raises(RtserError, match="odd number"):
        recognizer.stream().push(b"\x00\x01\x02")
