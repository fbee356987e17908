"""Streaming chunk features: every sample encoded once, spans pooled from stored chunks, the same
numbers whatever came before (real encoders of the shipped bundle)."""

import numpy as np
import pytest

from rtser import Recognizer
from rtser.audio import load
from rtser.pipeline.features import CHUNK, STEP, ChunkEncoder, FeatureTrack, clip_features
from train import data


class Counting:
    """A real onnxruntime session that also counts the samples each call encodes as new, and notes
    which calls embed the voice and which had context (every chunk but a turn's first)."""

    def __init__(self, encoder: ChunkEncoder):
        self.encoder, self.new, self.calls = encoder, 0, []
        self.sessions, self.kinds = encoder.sessions, encoder.kinds

    def encode(self, audio, new, voice=True):
        self.new += new
        self.calls.append((voice, len(audio) > new))
        return self.encoder.encode(audio, new, voice)


@pytest.fixture(scope="module")
def rec():
    return Recognizer("it")


@pytest.fixture(scope="module")
def speech(data_dir):
    """40 s of Italian utterances back to back (0.1 s gaps: continuous speech)."""
    clips = data.clips("emovo")[:20]
    parts = [np.concatenate([load(c.path), np.zeros(1600, np.float32)]) for c in clips]
    return np.concatenate(parts)[: 40 * 16000]


def test_a_span_depends_only_on_its_segments_audio_up_to_its_end(rec, speech):
    enc, anchor = rec.classifier.encoder, 8_000
    track = FeatureTrack(enc, lambda a, b: speech[a:b], anchor)
    for a, b in [
        (anchor, 50_000),
        (30_000, 90_000),
        (41_000, 47_777),
    ]:  # computed before, in any order
        track.features(a, b)
    other = speech.copy()
    other[:anchor] = np.random.default_rng(0).standard_normal(anchor) * 0.1  # before the segment
    for a, b in [(12_345, 61_000), (24_000, 56_000), (anchor + 100, anchor + 700)]:
        other[b:] = 0  # after the span's end
        fresh = FeatureTrack(enc, lambda i, j: other[i:j], anchor).features(a, b)
        got = track.features(a, b)
        assert got.keys() == fresh.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], fresh[name])
    out = track.features(24_000, 56_000)
    assert (
        out["whisper-base"].shape[1] == 32_000 // STEP
        and abs(np.linalg.norm(out["ge2e"]) - 1) < 1e-5
    )


def test_a_clip_gets_the_same_features_wherever_it_sits(rec, speech):
    enc, a, b = rec.classifier.encoder, 20_000, 70_000
    here = clip_features(enc, speech, a, b)
    shifted = clip_features(
        enc, np.concatenate([np.zeros(12_345, np.float32), speech]), a + 12_345, b + 12_345
    )
    for name in here:
        np.testing.assert_array_equal(here[name], shifted[name])


def test_a_stream_encodes_each_sample_once(rec, speech):
    session = rec.stream(16000)
    counters = [Counting(ch.track.encoder) for ch in session.channels]
    for ch, c in zip(session.channels, counters):
        ch.track.encoder = c
    events = []
    for i in range(0, len(speech), 3200):
        events += session.push(speech[i : i + 3200])
    events += session.close()
    segments = sum(e.type == "segment" for e in events)
    turns = sum(e.type == "turn" for e in events)
    assert sum(e.type == "label" for e in events) >= 5 and turns < segments
    # whole chunks once each, plus at most one cut chunk for each segment's end
    assert counters[0].new <= len(speech) + segments * CHUNK
    # GE2E only on a turn's first chunk: exactly the calls without context
    assert all(voice != context for voice, context in counters[0].calls)
    assert turns <= sum(voice for voice, _ in counters[0].calls) < len(counters[0].calls)
    # bounded: a turn's chunks, dropped when the next turn starts
    assert len(session.channels[0].track.chunks) <= 20


def test_rolling_labels_sit_on_chunk_boundaries_and_inside_their_segment(rec, speech):
    session = rec.stream(16000)
    events = session.push(speech) + session.close()
    segments = [e for e in events if e.type == "segment"]
    for e in (e for e in events if e.type == "label"):
        seg = next(s for s in segments if s.start <= e.start and s.seq > e.seq)
        assert e.end <= seg.end and e.end - e.start <= 3.0 + 1e-9


def test_hop_must_be_whole_chunks():
    from rtser.errors import RtserError

    with pytest.raises(RtserError, match="whole number of 2 s feature chunks"):
        Recognizer("it", hop_s=1.0)
