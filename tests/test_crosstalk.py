"""The other side's leak, measured on scripted frame energies: 12 dB until it is known, then the
measured leak's near quartile less a margin, never stricter than 12 dB nor laxer than 40 dB."""

import pytest

from rtser.pipeline.crosstalk import ECHO_DB, MARGIN_DB, MIN_FRAMES, MOST_DB, Crosstalk


def below(db):
    return 10 ** (-db / 10)


def test_twelve_db_until_the_leak_is_measured():
    c = Crosstalk()
    for _ in range(MIN_FRAMES - 1):
        c.observe(below(26), 1.0)
    assert c.leaks(below(13), 1.0) and not c.leaks(below(11), 1.0)


def test_a_measured_leak_lets_quieter_speech_through():
    c = Crosstalk()
    for i in range(200):  # mostly the leak, 26.5 dB down; in a fifth this side talks at once
        c.observe(below(26.5 if i % 5 else 8), 1.0)
    assert c.ratio == pytest.approx(10 ** ((26 - MARGIN_DB) / 10))  # whole dB
    assert c.leaks(below(24), 1.0) and not c.leaks(below(16), 1.0)


def test_a_leak_that_varies_from_frame_to_frame_is_still_the_leak_where_it_comes_nearest():
    c = Crosstalk()
    for _ in range(10):
        for db in range(14, 26):  # 14-25 dB down, evenly: three in four reach 17 dB
            c.observe(below(db + 0.5), 1.0)
    assert c.ratio == pytest.approx(10 ** (ECHO_DB / 10))  # 17 - 6 dB: stricter than 12 dB
    assert c.leaks(below(14.5), 1.0)  # a median (20 - 6 dB) would take this for speech


def test_never_stricter_than_twelve_db_nor_laxer_than_forty():
    loud, silent = Crosstalk(), Crosstalk()
    for _ in range(MIN_FRAMES):
        loud.observe(below(6), 1.0)  # a line that echoes 6 dB down
        silent.observe(0.0, 1.0)  # a channel that never hears the other side
    assert loud.ratio == pytest.approx(10 ** (ECHO_DB / 10))
    assert silent.ratio == pytest.approx(10 ** (MOST_DB / 10))


def test_frames_where_this_side_is_louder_say_nothing_of_the_leak():
    c = Crosstalk()
    for _ in range(MIN_FRAMES):
        c.observe(2.0, 1.0)
    assert sum(c.below) == 0
