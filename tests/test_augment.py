"""Training views of a clip (train.augment, train.features): seeded, finite, what a phone line
does."""

import numpy as np
import pytest

from train import augment, data
from train.features import VIEWS, split_variant, view_audio


def _speech(seconds=2.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    voiced = sum(
        np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 30)
    )  # a buzz with harmonics up to 4.5 kHz
    return (0.1 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _band_power(x, lo, hi, sr=16000):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return spec[(f >= lo) & (f < hi)].sum() / spec.sum()


@pytest.mark.parametrize("view", VIEWS)
def test_views_are_seeded_finite_and_in_range(view):
    x = _speech()
    fn = augment.VIEWS.get(view) or augment.TESTS[view]
    babble = lambda: _speech(1.3)
    a = fn(x, np.random.default_rng(7), babble)
    b = fn(x, np.random.default_rng(7), babble)
    assert np.array_equal(a, b) and a.dtype == np.float32
    assert np.isfinite(a).all() and np.abs(a).max() <= 1.0 and abs(len(a) - len(x)) <= 0.06 * len(x)
    assert not np.allclose(a[: len(x)], x[: len(a)], atol=1e-3)


def test_telephone_keeps_the_band_and_loses_packets():
    x = _speech()
    y = augment.telephone(x, np.random.default_rng(0), law="ULAW", loss=0.0)
    assert len(y) == len(x)
    assert _band_power(x, 3800, 8000) > 1e-3 and _band_power(y, 3800, 8000) < 1e-4
    assert _band_power(x, 0, 250) > 0.5 and _band_power(y, 0, 250) < 1e-3
    digital = augment.telephone(
        x, np.random.default_rng(0), law="ULAW", loss=0.0, band=None
    )  # no analogue band
    assert _band_power(digital, 3800, 8000) < 1e-4 and _band_power(digital, 0, 250) > 0.5
    lost = augment.telephone(x, np.random.default_rng(0), law="ALAW", loss=0.5)
    packets = lost[: len(lost) // 320 * 320].reshape(-1, 320)[
        :, 60:-60
    ]  # the resampler smears the edges
    quiet = np.abs(packets).max(axis=1) < 1e-2
    assert 0.2 < quiet.mean() < 0.8  # about half the 20 ms packets are gone


@pytest.mark.parametrize("snr", [10.0, 0.0])
def test_noise_sits_at_its_snr(snr):
    x = _speech()
    y = augment.white_at(snr)(x, np.random.default_rng(1), None)
    noise = y - x
    assert augment.speech_dbfs(x) - augment.dbfs(noise) == pytest.approx(snr, abs=0.1)


def test_variant_names():
    assert split_variant("whisper-base-l4.int8@chunks+phone") == (
        "whisper-base-l4.int8",
        True,
        "phone",
    )
    assert split_variant("ge2e.fp32") == ("ge2e.fp32", False, None)
    with pytest.raises(ValueError, match="unknown view"):
        split_variant("ge2e.int8@chunks+underwater")


def test_a_clip_view_is_reproducible_and_babble_comes_from_other_corpora(data_dir):
    clip = data.clips("emodb")[0]
    a, b = view_audio(clip, "noisy"), view_audio(clip, "noisy")
    assert np.array_equal(a, b) and not np.array_equal(a[:1000], view_audio(clip, None)[:1000])
