"""Calls, not clips: real utterances on a noisy line are separated one to one, a quiet side that
talks over a loud one is heard while the other side's echo opens nothing, a shouted clip that
Silero scores low is still found, and non-speech (tones, DTMF, hold music, hum, noise) gives no
events and no label."""

import numpy as np
import pytest
from conftest import EMODB, clip

from rtser import Recognizer, VadConfig
from rtser.audio import load
from rtser.report.summary import conversation
from sim import calls as linesim
from train import augment


def segments(rec, audio, sr=16000, **kw):
    s = rec.stream(sr, **kw)
    return [e for e in s.push(audio) + s.close() if e.type == "segment"]


def separated(segs, utts):
    """Each utterance has a segment covering >= 50 % of its speech and <= 30 % of any other's."""

    def share(e, u):
        return max(0.0, min(e.end, u.speech[1]) - max(e.start, u.speech[0])) / (
            u.speech[1] - u.speech[0]
        )

    return [
        any(
            share(e, u) >= 0.5 and all(share(e, v) <= 0.3 for v in utts if v is not u) for e in segs
        )
        for u in utts
    ]


@pytest.fixture(scope="module")
def noisy_call(data_dir):
    rng = np.random.default_rng(7)
    clips = [(load(clip("emodb", n)), n) for n in EMODB]
    call, utts = linesim.build_call(clips, rng, gap=(0.3, 0.8))
    speech = np.concatenate(
        [call[int(u.speech[0] * 16000) : int(u.speech[1] * 16000)] for u in utts]
    )
    return augment.add_noise(call, augment.dbfs(speech), "brown", 20, rng), utts


def test_a_noisy_call_is_separated_one_to_one(recognizer, noisy_call):
    call, utts = noisy_call
    segs = segments(recognizer, call)
    assert all(separated(segs, utts)) and len(segs) == len(utts)


def test_the_same_call_through_an_8k_mulaw_line(recognizer, noisy_call):
    call, utts = noisy_call
    narrow, sr = augment.g711(call)
    assert all(separated(segments(recognizer, narrow, sr), utts))


def test_stereo_with_echo_keeps_each_side_on_its_channel(recognizer, data_dir):
    rng = np.random.default_rng(3)
    clips = [(load(clip("emodb", n)), n) for n in EMODB[:4]]
    stereo, utts = linesim.build_stereo(clips, rng, overlap_share=0.0)
    segs = segments(recognizer, stereo, channels=2, split=True)
    for ch in (0, 1):
        mine = [e for e in segs if e.channel == ch]
        assert all(separated(mine, utts[ch])) and len(mine) == len(
            utts[ch]
        )  # the echo opens nothing


def test_a_side_that_starts_over_the_other_is_heard(recognizer, data_dir):
    rng = np.random.default_rng(3)
    clips = [(load(clip("emodb", n)), n) for n in EMODB[:4]]
    stereo, utts = linesim.build_stereo(clips, rng, overlap_share=1.0)  # each turn interrupts
    segs = segments(recognizer, stereo, channels=2, split=True)
    for ch in (0, 1):
        assert all(separated([e for e in segs if e.channel == ch], utts[ch]))


def test_a_quiet_side_that_talks_over_a_loud_one_is_heard_and_interrupts(recognizer, data_dir):
    """Once the other side's leak is measured (26 dB down here), speech 15 dB below that side is
    this side's own: its turn starts with its speech and interrupts; a 0.2 s take-over does not."""
    a, b, c, d, e = (load(clip("emodb", n)) for n in EMODB[:5])
    sides = np.zeros((2, 16 * 16000), np.float32)
    spans = {}

    def place(ch, x, speech_at, gain=1.0):
        lo, hi = linesim.speech_extent(x)
        at = round((speech_at - lo) * 16000)
        sides[ch, at : at + len(x)] += gain * x
        spans[ch] = spans.get(ch, []) + [(speech_at, speech_at + hi - lo)]
        return speech_at + hi - lo  # where its speech ends

    end = place(0, a, 0.5)
    end = place(0, b, end + 0.6)  # the customer's leak is measured over these 4 s or so
    end = place(1, c, end - 0.2)  # a 0.2 s take-over
    end = place(0, d, end + 1.0)
    quiet = 10 ** ((augment.speech_dbfs(d) - 15 - augment.speech_dbfs(e)) / 20)
    place(1, e, end - 1.0, gain=quiet)  # 15 dB below the agent (speech levels), 1 s before it stops
    rng = np.random.default_rng(0)
    stereo = np.stack([sides[0] + 0.05 * sides[1], sides[1] + 0.05 * sides[0]], axis=1)
    stereo += linesim.at_level(linesim.white(len(stereo), rng), -60)[:, None]
    s = recognizer.stream(16000, channels=2, split=True)
    events = s.push(stereo) + s.close()
    interrupting = [ev for ev in events if ev.type == "turn" and ev.channel == 1][-1]
    assert abs(interrupting.start - spans[1][-1][0]) < 0.1
    assert conversation(events)["interrupted_by"] == {"0": 0, "1": 1}


def test_a_late_echo_whose_level_wanders_opens_nothing(recognizer, data_dir):
    """The agent's voice leaks into the customer's channel 60 ms late, 14-26 dB down, its level
    changing every 0.25 s: measured, that leak is the customer's no more than a steady one."""
    rng = np.random.default_rng(5)
    gaps = [np.zeros(int(16000 * rng.uniform(0.3, 1.5)), np.float32) for _ in range(12)]
    agent = np.concatenate(
        [x for n, g in zip(EMODB * 2, gaps) for x in (load(clip("emodb", n)), g)]
    )
    level = 10 ** ((-20 + rng.uniform(-6, 6, len(agent) // 4000 + 1)) / 20)
    leak = (
        np.concatenate([np.zeros(960, np.float32), agent[:-960]])
        * np.repeat(level, 4000)[: len(agent)]
    )
    noise = [linesim.at_level(linesim.white(len(agent), rng), -60) for _ in range(2)]
    stereo = np.stack([agent + noise[0], leak.astype(np.float32) + noise[1]], axis=1)
    segs = segments(recognizer, stereo, channels=2, split=True)
    assert {e.channel for e in segs} == {0}


ECHOED = ["pau-f1-n5.flac", "pau-f1-d1.flac", "sor-f1-n5.flac", "gio-f1-b1.flac"]  # EMOVO


@pytest.mark.parametrize("name", ECHOED)
def test_the_other_sides_echo_opens_nothing_on_a_noisy_line(recognizer, data_dir, name):
    """Its quiet syllables' echo is within 12 dB of this side's line noise, and Silero goes on
    hearing the echo for a moment after it ends: neither may pass for this side's speech."""
    rng = np.random.default_rng(0)
    x = np.pad(load(clip("emovo", name)), 8000)
    noise = [linesim.at_level(linesim.white(len(x), rng), -60) for _ in range(2)]
    stereo = np.stack([0.1 * x + noise[0], x + noise[1]], axis=1)  # the echo 20 dB down
    segs = segments(recognizer, stereo, channels=2, split=True)
    assert {e.channel for e in segs} == {1}


@pytest.fixture(scope="module")
def non_speech():
    return linesim.non_speech(np.random.default_rng(11))


@pytest.mark.parametrize("line", ["16 kHz", "8 kHz μ-law"])
def test_tones_dtmf_music_hum_and_noise_give_no_events(recognizer, non_speech, line):
    audio = np.concatenate([x for _, x in non_speech])
    sr = 16000
    if line != "16 kHz":
        audio, sr = augment.g711(audio)
    s = recognizer.stream(sr)
    assert s.push(audio) + s.close() == []


# RAVDESS, strong anger, that Silero scores low: actor 6 mostly 0.1-0.5, actor 18 mostly under 0.1
# (heard as runs of loud voiced frames); the last, screamed at a pitch of 500-600 Hz, Silero scores
# through μ-law mostly under 0.1 (one frame over 0.5: too short to open a segment)
SHOUTED = ["03-01-05-02-02-01-06.flac", "03-01-05-02-02-01-18.flac", "03-01-05-02-01-02-18.flac"]


@pytest.mark.parametrize(
    "name, line",
    [
        (SHOUTED[0], "16 kHz"),
        (SHOUTED[0], "8 kHz μ-law"),
        (SHOUTED[1], "16 kHz"),
        (SHOUTED[2], "8 kHz μ-law"),
    ],
)
def test_a_shouted_clip_that_the_neural_vad_misses_is_still_labelled(data_dir, name, line):
    audio, sr = load(clip("ravdess", name)), 16000
    if line != "16 kHz":
        audio, sr = augment.g711(audio)
    alone = Recognizer("en", vad=VadConfig(second_opinion=False))
    assert alone.predict(audio, sr).label is None  # Silero alone loses every frame of it
    rec = Recognizer("en")
    assert rec.predict(audio, sr).label is not None
    s = rec.stream(sr)
    assert [e.type for e in s.push(audio) + s.close() if e.final] == ["turn"]


def test_predict_on_non_speech_gives_no_label(recognizer, non_speech):
    for name, x in non_speech:
        p = recognizer.predict(x)
        assert p.label is None and p.probs == {}, name


def test_webrtc_is_still_there_and_flags_tones(data_dir, non_speech):
    """The old path stays available (``--vad webrtc``); it is what the neural default fixes."""
    rec = Recognizer("de", vad=VadConfig(kind="webrtc"))
    tones = np.concatenate([x for name, x in non_speech if "tone" in name or "DTMF" in name])
    s = rec.stream(16000)
    assert any(e.type == "segment" for e in s.push(tones) + s.close())


def test_silero_scores_blocks_exactly_as_its_per_frame_graph(recognizer, noisy_call):
    """The bundle's sequence graph scores a block of frames in one call: the same probabilities,
    bit for bit, whatever the blocks, as the wheel's per-frame graph run frame by frame."""
    from export import sources
    from rtser.pipeline.sessions import session
    from rtser.pipeline.vad import SILERO_CONTEXT, SILERO_FRAME

    call, _ = noisy_call
    frames = call[: len(call) // SILERO_FRAME * SILERO_FRAME].reshape(-1, SILERO_FRAME)
    per_frame = session(sources.package_dir("silero_vad") / "data" / "silero_vad.onnx")
    state, x, want = (
        np.zeros((2, 1, 128), np.float32),
        np.zeros((1, SILERO_CONTEXT + SILERO_FRAME), np.float32),
        [],
    )
    for f in frames:
        x = np.concatenate([x[:, -SILERO_CONTEXT:], f[None]], axis=1)
        prob, state = per_frame.run(
            None, {"input": x, "state": state, "sr": np.array(16000, np.int64)}
        )
        want.append(prob[0, 0])
    gated = []  # with the noise floor's rule on top: the same whatever the blocks, too
    for block in (1, 7, 31, len(frames)):
        detector = recognizer.vad.detector()
        got = np.concatenate(
            [detector.inner.scores(frames[i : i + block]) for i in range(0, len(frames), block)]
        )
        np.testing.assert_array_equal(got, np.array(want, np.float32))
        detector = recognizer.vad.detector()
        gated.append(
            np.concatenate(
                [detector.scores(frames[i : i + block]) for i in range(0, len(frames), block)]
            )
        )
    for got in gated[1:]:
        np.testing.assert_array_equal(got, gated[0])


def test_a_bundle_with_the_per_frame_silero_graph_is_refused_clearly():
    from export import sources
    from rtser import RtserError
    from rtser.pipeline.vad import Vad

    with pytest.raises(RtserError, match="python -m export.vad"):
        Vad(VadConfig(), sources.package_dir("silero_vad") / "data" / "silero_vad.onnx")
