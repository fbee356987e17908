"""Turns instead of fragments: the turn state machine on scripted speech, a provisional segment
replaced by its turn's final label, the conversation cues' arithmetic, and a real call whose
utterances pause inside."""

import numpy as np
import pytest

from rtser.pipeline.turns import TurnTracker
from rtser.report.summary import conversation, summarize

SR = 16000


def s(seconds):
    return int(seconds * SR)


def test_a_pause_shorter_than_the_gap_stays_inside_the_turn():
    turns = TurnTracker(gap_s=0.8)
    turn, ended = turns.join(s(1.0), new_id=0)
    assert (turn.id, ended) == (0, None)
    turns.add(s(2.0), s(2.0) + 1024, None)
    assert turns.due(s(2.5), pending=None) is None  # 0.5 s of pause: the turn goes on
    turn, ended = turns.join(s(2.5), new_id=1)  # speech again after 0.5 s: the same turn
    assert (turn.id, ended) == (0, None)
    turns.add(s(3.0), s(3.0) + 1024, None)
    assert turns.due(s(3.7), pending=None) is None
    done = turns.due(s(3.8), pending=None)  # 0.8 s after its speech ended
    assert (done.id, done.start, done.end, done.segments) == (0, s(1.0), s(3.0), 2)
    assert done.span_end == s(3.0) + 1024  # its label reads the audio up to its last segment's
    assert turns.due(s(10), pending=None) is None and turns.finish() is None


def test_speech_that_started_within_the_gap_holds_the_turn_open():
    turns = TurnTracker(gap_s=0.8)
    turns.join(s(1.0), new_id=0)
    turns.add(s(2.0), s(2.0) + 1024, None)
    assert turns.due(s(3.0), pending=s(2.5)) is None  # a candidate from 2.5 s may join it
    assert turns.due(s(3.0), pending=s(2.9)).id == 0  # one from 2.9 s starts a new turn


def test_a_segment_after_the_gap_opens_the_next_turn_and_the_stream_end_closes_the_last():
    turns = TurnTracker(gap_s=0.8)
    turns.join(s(1.0), new_id=0)
    turns.add(s(2.0), s(2.0) + 1024, None)
    turn, ended = turns.join(s(3.5), new_id=1)  # not yet closed by due(): closed now
    assert (turn.id, ended.id) == (1, 0)
    turns.add(s(4.0), s(4.0) + 1024, None)
    last = turns.finish()
    assert (last.id, last.start, last.end) == (1, s(3.5), s(4.0))


def test_a_turn_of_music_alone_is_forgotten_and_one_with_speech_is_kept():
    turns = TurnTracker(gap_s=0.8)
    turns.join(s(1.0), new_id=0)  # a segment the gate then hears as music
    turns.discard_empty()
    turn, ended = turns.join(s(1.5), new_id=1)  # speech 0.5 s later opens a turn of its own
    assert (turn.id, turn.start, ended) == (1, s(1.5), None)
    turns.add(s(2.0), s(2.0) + 1024, None)
    turns.join(s(2.5), new_id=2)  # music inside the turn: the turn and its speech stay
    turns.discard_empty()
    last = turns.finish()
    assert (last.id, last.start, last.end, last.segments) == (1, s(1.5), s(2.0), 1)


def event(kind, track, start, end, label="neutral", turn=None):
    return {"type": kind, "track": track, "start": start, "end": end, "label": label,
            "probs": {label: 0.9}, "turn": turn}  # fmt: skip


def test_the_conversation_cues_on_scripted_turns():
    events = [
        event("segment", "agent", 0.0, 4.0, turn=0),
        event("turn", "agent", 0.0, 4.0, turn=0),
        event("segment", "customer", 3.0, 5.0, turn=1),  # 1.0 s over the agent: an interruption
        event("turn", "customer", 3.0, 5.0, turn=1),
        event("segment", "agent", 11.0, 12.0, turn=2),  # after 6 s of dead air
        event("turn", "agent", 11.0, 12.0, turn=2),
        event("segment", "customer", 11.8, 13.0, turn=3),  # 0.2 s over: a back-channel, no more
        event("turn", "customer", 11.8, 13.0, turn=3),
    ]
    cues = conversation(events)
    assert cues["overlap_s"] == pytest.approx(1.2)
    assert cues["interruptions"] == 1 and cues["interrupted_by"] == {"agent": 0, "customer": 1}
    assert cues["longest_silence_s"] == 6.0 and cues["silences_over_5s"] == 1
    tracks = summarize(events)
    assert tracks["agent"]["talk_s"] == 5.0 and tracks["customer"]["talk_s"] == 3.2
    assert tracks["agent"]["talk_ratio"] == round(5 / 8.2, 3)
    assert tracks["agent"]["turns"] == 2 and tracks["agent"]["segments"] == 2


def test_the_summary_reads_the_final_turns_not_the_fragments():
    events = [
        event("segment", 0, 0.0, 1.0, "anger", turn=0),  # a fragment labelled on its own
        event("segment", 0, 1.3, 3.0, "neutral", turn=0),
        event("turn", 0, 0.0, 3.0, "neutral", turn=0),  # the whole turn
    ]
    t = summarize(events)[0]
    assert t["label_share"] == {"neutral": 1.0} and t["longest_negative"] is None
    # talk time is the turn's, its 0.3 s pause included, as a listener counts it
    assert (t["turns"], t["segments"], t["talk_s"]) == (1, 2, 3.0)


@pytest.fixture(scope="module")
def paused_call(data_dir):
    """Utterances of one speaker, each two clips with a 0.45 s pause inside, 1.5 s apart."""
    from conftest import clip

    from rtser.audio import load
    from sim.calls import speech_extent

    names = ["03a01Fa.flac", "03a01Nc.flac", "03a02Wb.flac", "03a04Ad.flac"]
    speech = []
    for name in names:
        x = load(clip("emodb", name))
        a, b = speech_extent(x)
        speech.append(x[int(a * SR) : int(b * SR)])
    gap, pause = np.zeros(s(1.5), np.float32), np.zeros(s(0.45), np.float32)
    parts, marks, t = [gap], [], len(gap)
    for first, second in zip(speech[0::2] + speech[1::2], speech[1::2] + speech[0::2]):
        utterance = np.concatenate([first, pause, second])
        marks.append((t / SR, (t + len(utterance)) / SR))
        parts += [utterance, gap]
        t += len(utterance) + len(gap)
    return np.concatenate(parts), marks


def test_a_call_whose_utterances_pause_inside_gets_one_final_per_utterance(recognizer, paused_call):
    audio, marks = paused_call
    session = recognizer.stream(SR)
    events = session.push(audio) + session.close()
    finals = [e for e in events if e.final]
    assert len(finals) == len(marks)
    for e, (a, b) in zip(finals, marks):
        assert a - 0.3 <= e.start and e.end <= b + 0.3  # each final covers its own utterance
    provisional = [e for e in events if e.type == "segment"]
    assert len(provisional) > len(finals)  # the pauses did cut the utterances into fragments
    for e in provisional:  # each fragment comes before its turn's final, which replaces it
        final = next(f for f in finals if f.turn == e.turn)
        assert e.seq < final.seq and final.start <= e.start and e.end <= final.end


def test_an_utterance_with_a_pause_inside_gets_predicts_label_in_its_final(recognizer, paused_call):
    """Streamed alone, an utterance that the pause cuts into two segments is one turn, labelled
    from its whole span (the pause included) as ``predict`` labels the clip."""
    audio, marks = paused_call
    for a, b in marks:
        clip = audio[s(a) : s(b)]
        session = recognizer.stream(SR)
        events = session.push(clip) + session.close()
        (final,) = [e for e in events if e.final]
        assert sum(e.type == "segment" for e in events) == 2
        p = recognizer.predict(clip)
        assert final.label == p.label and final.arousal == pytest.approx(p.arousal, abs=1e-5)
        np.testing.assert_allclose(list(final.probs.values()), list(p.probs.values()), atol=1e-5)
