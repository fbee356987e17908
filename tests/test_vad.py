"""The segmenter's state machine on scripted speech / non-speech decisions, and the label
smoother."""

import numpy as np
import pytest

from rtser import RtserError, VadConfig
from rtser.pipeline.calibration import Calibration
from rtser.pipeline.segmenter import Segmenter
from rtser.pipeline.smoothing import LabelSmoother

FRAME = 480  # 30 ms at 16 kHz


def segments(decisions, **cfg) -> list[tuple[float, float]]:
    """'S' = a speech frame, '.' = not (or a list of scores); 30 ms frames, 500 ms closing silence
    unless ``cfg`` says otherwise; returns (start, end) in seconds of each segment."""
    config = VadConfig(**{"kind": "webrtc", "min_silence_ms": 500, **cfg})
    seg, changes = Segmenter(config), []
    for i, d in enumerate(decisions):
        score = d if isinstance(d, float) else float(d == "S")
        changes += seg.decide(score, i * FRAME, FRAME, energy=0.0 if d == "." else 1.0)
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


def test_max_length_cut_falls_on_the_quietest_frame_near_the_limit():
    scripted = ["S"] * 30 + ["."] + ["S"] * 69 + ["."] * 20  # a one-frame dip at 0.9 s
    got = segments(scripted, max_segment_s=1.2)
    assert got[0] == (0.0, 0.9)  # cut at the dip, not at 1.2 s
    assert got[1][0] == 0.93 and all(b - a <= 1.2 + 1e-9 for a, b in got)
    assert got[-1][1] == 3.0


def test_max_length_cut_in_a_pause_ends_where_speech_stopped():
    # the limit (40 frames) falls 3 frames into a pause: the segment ends at the pause, no empty
    # one follows
    assert segments("S" * 37 + "..." + "." * 20, max_segment_s=1.2) == [(0.0, 1.11)]
    assert segments("S" * 37 + "..." + "S" * 10 + "." * 20, max_segment_s=1.2) == [
        (0.0, 1.11),
        (1.2, 1.5),
    ]


def test_hysteresis_keeps_weaker_frames_inside_a_segment():
    scores = [0.9] * 40 + [0.4] * 4 + [0.9] * 6 + [0.1] * 20
    assert segments(scores, threshold=0.5, neg_threshold=0.35) == [(0.0, 1.5)]
    assert segments(scores, threshold=0.5, neg_threshold=0.5, min_silence_ms=90) == [
        (0.0, 1.2),
        (1.32, 1.5),
    ]


def test_a_segment_closes_after_min_silence_however_short_it_is():
    # 0.3 s of speech, a 240 ms pause, more speech: two segments, the first reported at once (its
    # turn joins them: tests/test_turns.py)
    assert segments("S" * 10 + "." * 8 + "S" * 30 + "." * 20, min_silence_ms=120) == [
        (0.0, 0.3),
        (0.54, 1.44),
    ]
    # a pause shorter than min_silence_ms stays inside
    assert segments("S" * 10 + "." * 3 + "S" * 30 + "." * 20, min_silence_ms=120) == [(0.0, 1.29)]


def test_a_candidate_opens_once_its_speech_spans_min_speech():
    # two short bursts 60 ms apart: together 180 ms of speech span, so one segment from the first
    assert segments("SS..SS" + "." * 20, min_speech_ms=150, min_silence_ms=120) == [(0.0, 0.18)]
    # a candidate survives a pause longer than min_silence_ms (up to 320 ms): a first word joins
    assert segments("SS" + "." * 5 + "SSSSS" + "." * 20, min_speech_ms=150, min_silence_ms=120) == [
        (0.0, 0.36)
    ]
    # too far apart: the first burst is dropped
    assert segments(
        "SS" + "." * 11 + "SSSSS" + "." * 20, min_speech_ms=150, min_silence_ms=120
    ) == [(0.39, 0.54)]


@pytest.mark.parametrize("seed", range(20))
def test_no_segment_is_ever_empty_or_too_long(seed):
    rng = np.random.default_rng(seed)
    decisions = "".join(rng.choice(["S", "."], p=[0.7, 0.3]) for _ in range(600))
    for got in (segments(decisions, max_segment_s=0.9), segments(decisions)):
        assert got and all(b > a for a, b in got)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(got, got[1:]))
    assert all(b - a <= 0.9 + 1e-9 for a, b in segments(decisions, max_segment_s=0.9))


def test_bad_config_is_refused():
    with pytest.raises(RtserError):
        VadConfig(min_speech_ms=0)
    with pytest.raises(RtserError):
        VadConfig(max_segment_s=0.1)


def test_smoother_averages_exponentially():
    s = LabelSmoother(Calibration.from_spec(None, ["a", "b"]), alpha=0.5, margin=0.15)
    s.update(np.array([1.0, 0.0]))
    _, p = s.update(np.array([0.0, 1.0]))
    np.testing.assert_allclose(p, [0.5, 0.5])
    _, p = s.update(np.array([0.0, 1.0]))
    np.testing.assert_allclose(p, [0.25, 0.75])


def test_smoother_label_changes_only_past_the_margin():
    s = LabelSmoother(Calibration.from_spec(None, ["a", "b"]), alpha=1.0, margin=0.15)
    assert s.update(np.array([0.6, 0.4]))[0] == "a"
    assert s.update(np.array([0.45, 0.55]))[0] == "a"  # b leads by 0.10 < margin: a stays
    assert s.update(np.array([0.4, 0.6]))[0] == "b"  # b leads by 0.20: switch
    s.reset()
    assert s.update(np.array([0.45, 0.55]))[0] == "b"  # after reset the top label is taken


def test_the_end_is_known_min_silence_after_the_last_speech_frame():
    """The segment event's delay after speech, in audio: the closing silence and nothing more."""
    cfg = VadConfig()  # silero's 32 ms frames, 128 ms closing silence
    seg, frame = Segmenter(cfg), cfg.frame
    scores = [0.9] * 40 + [0.1] * 10
    for i, score in enumerate(scores):
        changes = seg.decide(score, i * frame, frame)
        if changes == [("end", 40 * frame)]:
            assert (
                (i + 1) * frame - 40 * frame == cfg.frames(cfg.min_silence_ms) * frame == 4 * frame
            )
            return
    raise AssertionError("no end")


def voice(seconds: float, level_db: float, rng) -> np.ndarray:
    """A vowel-like sound: glottal pulses at a gliding 120-180 Hz pitch through two formants."""
    t = np.arange(int(seconds * 16000)) / 16000
    phase = np.cumsum(2 * np.pi * (150 + 30 * np.sin(2 * np.pi * 2 * t)) / 16000)
    pulses = np.sum([np.sin(k * phase) / k for k in range(1, 20)], axis=0)
    spectrum = np.fft.rfft(pulses)
    f = np.fft.rfftfreq(len(t), 1 / 16000)
    spectrum *= 1 / (1 + ((f - 700) / 150) ** 2) + 1 / (1 + ((f - 1200) / 200) ** 2)
    x = np.fft.irfft(spectrum, len(t)) + 0.01 * rng.standard_normal(len(t))
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)).astype(np.float32)


def test_the_second_opinion_hears_loud_voice_and_not_tones_noise_or_quiet():
    from rtser.pipeline.vad import loud_voiced

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    frames = lambda x: x[: len(x) // 512 * 512].reshape(-1, 512)
    assert loud_voiced(frames(voice(1.0, -20, rng))).mean() > 0.9
    assert not loud_voiced(frames(voice(1.0, -50, rng))).any()  # voiced, but not loud
    dtmf = np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t)
    tones = [np.sin(2 * np.pi * 440 * t), dtmf]
    for x in [*tones, rng.standard_normal(16000), np.cumsum(rng.standard_normal(16000))]:
        x = (0.1 * x / np.sqrt(np.mean(x**2))).astype(np.float32)
        assert not loud_voiced(frames(x)).any()


@pytest.mark.parametrize("name", ["03-01-05-02-02-01-06.flac", "03-01-05-02-02-01-18.flac"])
def test_the_second_opinion_does_not_depend_on_how_frames_are_blocked(data_dir, name):
    """The detector carries whether the last frame was voice, and which of the frames up to it
    were loud voiced, from one block to the next (blocks of 7 frames: shorter than a run)."""
    from conftest import clip

    from rtser import Recognizer
    from rtser.audio import load

    vad = Recognizer("en").vad
    x = load(clip("ravdess", name))  # shouted: Silero scores it low
    frames = x[: len(x) // 512 * 512].reshape(-1, 512)
    whole = vad.detector().scores(frames)
    detector = vad.detector()
    cut = np.concatenate([detector.scores(frames[i : i + 7]) for i in range(0, len(frames), 7)])
    np.testing.assert_allclose(cut, whole, atol=1e-6)
    assert (whole == 1.0).sum() >= 5  # frames the second opinion counted


class AlwaysSpeech:
    """A detector that hears speech in every frame (as Silero does for a while after speech)."""

    def scores(self, frames):
        return np.ones(len(frames), np.float32)


def test_a_frame_at_the_lines_noise_floor_is_not_speech_when_asked():
    from rtser.pipeline.vad import LineDetector

    rng = np.random.default_rng(0)
    line = rng.normal(0, 1e-3, (60, 512)).astype(np.float32)  # -60 dBFS white noise
    line[20:30] *= 30  # a loud stretch
    line[:5] = 0  # digital silence, as around a clip, is no line's noise
    off, on = LineDetector(AlwaysSpeech(), 0.0, 512), LineDetector(AlwaysSpeech(), 1.5, 512)
    assert off.scores(line).all()
    scores = on.scores(line)
    assert scores[20:30].all() and scores[:5].sum() == 0
    assert scores[30:].mean() < 0.2  # most noise frames are within 1.5 dB of the quietest
    assert on.above[20:30].min() > 100 * on.above[40:].max()  # the floor is taken out
    with pytest.raises(RtserError, match="floor_db"):
        VadConfig(floor_db=-1)
