"""The segmenter's state machine on scripted speech / non-speech decisions, and the label smoother."""
import numpy as np
import pytest

from rtser import RtserError, VadConfig
from rtser.smoothing import LabelSmoother
from rtser.vad import Segmenter

FRAME = 480  # 30 ms at 16 kHz


def segments(decisions: str, **cfg) -> list[tuple[float, float]]:
    """'S' = a speech frame, '.' = not; returns (start, end) in seconds of each segment."""
    seg, changes = Segmenter(VadConfig(**cfg)), []
    for i, d in enumerate(decisions):
        changes += seg.decide(d == "S", i * FRAME, FRAME)
    changes += seg.finish(len(decisions) * FRAME)
    assert [k for k, _ in changes] == ["start", "end"] * (len(changes) // 2)
    return [(a / 16000, b / 16000) for (_, a), (_, b) in zip(changes[::2], changes[1::2])]


def test_speech_shorter_than_min_speech_opens_nothing():
    assert segments("...SSSS.........") == []  # 4 frames = 120 ms < 150 ms


def test_a_segment_runs_from_its_first_to_its_last_speech_frame():
    assert segments("..SSSSSS" + "." * 20) == [(0.06, 0.24)]


def test_pauses_shorter_than_min_silence_stay_inside():
    assert segments("SSSSS" + "." * 16 + "SSSSS" + "." * 20) == [(0.0, 0.78)]
    assert segments("SSSSS" + "." * 17 + "SSSSS" + "." * 20) == [(0.0, 0.15), (0.66, 0.81)]


def test_speech_to_the_end_ends_at_the_stream_end():
    assert segments("..SSSSSSSS") == [(0.06, 0.3)]


def test_max_length_cut_in_speech_reopens_with_the_speech():
    got = segments("S" * 100 + "." * 20, max_segment_s=1.2)
    assert got[0] == (0.0, 1.2) and all(b - a <= 1.2 + 1e-9 for a, b in got)
    assert [a for a, _ in got] == [0.0, 1.2, 2.4]  # no gap, no overlap
    assert got[-1][1] == 3.0


def test_max_length_cut_in_a_pause_ends_where_speech_stopped():
    # the limit (40 frames) falls 3 frames into a pause: the segment ends at the pause, no empty one follows
    got = segments("S" * 37 + "..." + "." * 20, max_segment_s=1.2)
    assert got == [(0.0, 1.11)]
    got = segments("S" * 37 + "..." + "S" * 10 + "." * 20, max_segment_s=1.2)
    assert got == [(0.0, 1.11), (1.2, 1.5)]


@pytest.mark.parametrize("seed", range(20))
def test_no_segment_is_ever_empty_or_too_long(seed):
    rng = np.random.default_rng(seed)
    decisions = "".join(rng.choice(["S", "."], p=[0.7, 0.3]) for _ in range(600))
    for got in (segments(decisions, max_segment_s=0.9), segments(decisions)):
        assert got and all(b - a >= 0.15 - 1e-9 for a, b in got)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(got, got[1:]))
    assert all(b - a <= 0.9 + 1e-9 for a, b in segments(decisions, max_segment_s=0.9))


def test_bad_config_is_refused():
    with pytest.raises(RtserError):
        VadConfig(min_speech_ms=0)
    with pytest.raises(RtserError):
        VadConfig(max_segment_s=0.1)


def test_smoother_averages_exponentially():
    s = LabelSmoother(["a", "b"], alpha=0.5, margin=0.15)
    s.update(np.array([1.0, 0.0]))
    _, p = s.update(np.array([0.0, 1.0]))
    np.testing.assert_allclose(p, [0.5, 0.5])
    _, p = s.update(np.array([0.0, 1.0]))
    np.testing.assert_allclose(p, [0.25, 0.75])


def test_smoother_label_changes_only_past_the_margin():
    s = LabelSmoother(["a", "b"], alpha=1.0, margin=0.15)
    assert s.update(np.array([0.6, 0.4]))[0] == "a"
    assert s.update(np.array([0.45, 0.55]))[0] == "a"   # b leads by 0.10 < margin: a stays
    assert s.update(np.array([0.4, 0.6]))[0] == "b"     # b leads by 0.20: switch
    s.reset()
    assert s.update(np.array([0.45, 0.55]))[0] == "b"   # after reset the top label is taken
