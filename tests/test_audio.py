"""Decoding, conversion and resampling on real speech."""

import warnings

import numpy as np
import pytest
import soundfile as sf
from conftest import EMODB, clip

from rtser.audio import AudioFile, as_float, load
from rtser.audio.resample import Resampler, resample
from rtser.errors import RtserError


@pytest.fixture(scope="module")
def speech(data_dir):
    return load(clip("emodb", EMODB[0]))


@pytest.mark.parametrize(
    "fmt,subtype,rate,tol",
    [
        ("WAV", "PCM_16", 16000, 1e-3),
        ("WAV", "PCM_24", 44100, 1e-3),
        ("WAV", "PCM_32", 48000, 1e-3),
        ("WAV", "PCM_U8", 16000, 2e-2),
        ("WAV", "FLOAT", 22050, 1e-3),
        ("WAV", "ULAW", 8000, 4e-2),
        ("WAV", "ALAW", 8000, 4e-2),
        ("FLAC", "PCM_16", 32000, 1e-3),
        ("OGG", "VORBIS", 16000, 8e-2),
    ],
)
def test_formats_and_rates_decode_to_the_same_speech(speech, tmp_path, fmt, subtype, rate, tol):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, resample(speech, 16000, rate), rate, format=fmt, subtype=subtype)
    back = load(path)
    band = resample(resample(speech, 16000, rate), rate, 16000) if rate < 16000 else speech
    n = min(len(back), len(band))
    assert abs(len(back) - len(speech)) <= 2
    assert np.sqrt(np.mean((back[:n] - band[:n]) ** 2)) < tol


def test_stereo_blocks(speech, tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([speech, -speech], axis=1), 16000)
    with AudioFile(path) as f:
        blocks = list(f.blocks(0.25))
    assert f.info.channels == 2 and all(b.shape[1] == 2 and len(b) <= 4000 for b in blocks)


def test_resampler_chunking_is_invisible(speech):
    whole = resample(speech, 16000, 8000)
    r, out, rng, i = Resampler(16000, 8000), [], np.random.default_rng(1), 0
    while i < len(speech):
        n = int(rng.integers(1, 3000))
        out.append(r.process(speech[i : i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(out + [r.flush()]), whole)


def test_resampler_keeps_a_tone():
    t = np.arange(44100) / 44100
    y = resample(np.sin(2 * np.pi * 1000 * t), 44100, 16000)
    ref = np.sin(2 * np.pi * 1000 * np.arange(len(y)) / 16000)
    assert len(y) == 16000 and np.abs(y - ref)[100:-100].max() < 1e-3


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p.write_bytes(b"not audio at all" * 100), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "no audio samples"),
        (lambda p: None, "no such file"),
    ],
)
def test_bad_files(tmp_path, make, match):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(RtserError, match=match):
        AudioFile(path)


def test_truncated_file(speech, tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, np.tile(speech, 5), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RtserError, match="truncated|decoding stopped"):
        load(path)


def test_as_float_layouts():
    x = (np.arange(-5, 5) * 1000).astype(np.int16)
    assert as_float(x).shape == (10, 1)
    assert as_float(np.zeros((2, 100), np.float32)).shape == (100, 2)
    assert as_float(x.tobytes(), 2).shape == (5, 2)
    with pytest.raises(RtserError):
        as_float(np.array(["a"]))


def _wav(tmp_path, speech, name="x.wav"):
    path = tmp_path / name
    sf.write(path, speech, 16000, subtype="PCM_16")
    return path


def test_wav_cut_short_of_its_header_is_truncated(speech, tmp_path):
    path = _wav(tmp_path, speech)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RtserError, match="truncated"):
        AudioFile(path)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_wav_from_a_streaming_recorder_is_read_with_a_warning(speech, tmp_path, size):
    import struct

    from rtser.audio.io import wav_data_chunk
    from rtser.errors import RtserWarning

    path = _wav(tmp_path, speech)
    offset, _ = wav_data_chunk(path)
    data = bytearray(path.read_bytes())
    data[offset - 4 : offset] = struct.pack("<I", size)
    data[4:8] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = load(path)
    np.testing.assert_allclose(back, load(_wav(tmp_path, speech, "ref.wav")), atol=1e-6)
    assert (size == 0) == any(issubclass(w.category, RtserWarning) for w in caught)


def test_long_audio_resamples_in_bounded_memory():
    import tracemalloc

    x = np.zeros(44100 * 300, np.float32)  # 5 min at 44.1 kHz: 53 MB in, 19 MB out
    tracemalloc.start()
    y = resample(x, 44100, 16000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(y) == 16000 * 300 and peak < 3 * y.nbytes


def test_float_samples_far_outside_full_scale_are_refused():
    with pytest.raises(RtserError, match="outside"):
        as_float(np.full(100, 1e18, np.float32))
    assert as_float(np.full(100, 1.5, np.float32)).max() == 1.5  # mild overshoot is normal
