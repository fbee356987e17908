"""Shared fixtures, and the ``slow`` mark: tests that read the corpora (``data_dir`` and the
fixtures built on it) and the modules in ``SLOW_MODULES``. The fast tier, ``pytest -m "not slow"``,
needs only the runtime and pytest: it does not even import those modules."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))  # train/ and export/ are not installed packages


def clip(corpus: str, name: str) -> Path:
    path = next((DATA / corpus / "audio").rglob(name))
    return path


# short real utterances, one per emotion where possible (German EmoDB, speaker 03/08)
EMODB = [
    "03a01Fa.flac",
    "03a01Nc.flac",
    "03a02Wb.flac",
    "03a04Ad.flac",
    "08a01Lc.flac",
    "08a02Ac.flac",
]


CORPUS_FIXTURES = {"data_dir", "recognizer", "utterances"}
SLOW_MODULES = {
    "test_augment.py": "training code (the export extras)",
    "test_train.py": "training code (the export extras)",
    "test_encoders.py": "torch",
    "test_model.py": "torch",
    "test_serve.py": "a real rtser serve",
    "test_page.py": "a real rtser serve and Chromium",
    "test_genesys.py": "a real rtser serve and Genesys's reference client (node)",
    "test_batch.py": "worker processes and Ray",
    "test_calls.py": "the corpora",
}


def pytest_ignore_collect(collection_path, config):
    return collection_path.name in SLOW_MODULES and config.getoption("markexpr") == "not slow"


def pytest_collection_modifyitems(items):
    for item in items:
        corpora = CORPUS_FIXTURES & set(getattr(item, "fixturenames", ()))
        if corpora or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir():
    if not (DATA / "emodb" / "manifest.csv").exists():
        if os.environ.get("CI"):  # CI must test on real speech, not pass by skipping it
            pytest.fail(f"corpora not found at {DATA}; CI needs ../shared/data")
        pytest.skip(f"corpora not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def recognizer(data_dir):
    from rtser import Recognizer

    return Recognizer("de")


@pytest.fixture(scope="session")
def utterances(data_dir):
    from rtser.audio import load

    return [load(clip("emodb", n)) for n in EMODB]


def speech_onset(x: np.ndarray, sr: int = 16000) -> float:
    """Energy onset: first 10 ms frame within 30 dB of the loudest frame."""
    from sim.calls import speech_extent

    return float(speech_extent(x, sr)[0])


def continuous_speech(utterances, gap_s: float = 0.05) -> np.ndarray:
    """The utterances' speech back to back (50 ms gaps): one long segment, with rolling labels."""
    from sim.calls import speech_extent

    parts = [np.zeros(8000, np.float32)]
    for u in utterances:
        a, b = speech_extent(u)
        parts += [u[int(a * 16000) : int(b * 16000)], np.zeros(int(gap_s * 16000), np.float32)]
    return np.concatenate(parts + [np.zeros(8000, np.float32)])


def build_call(utterances, gap_s: float = 1.02, sr: int = 16000):
    """Utterances separated by digital silence, each starting on the 30 ms VAD frame grid (as a
    lone clip given to predict() does); returns audio and each utterance's (start, onset)."""
    frame = sr * 30 // 1000
    gap = np.zeros(int(gap_s * sr) // frame * frame, np.float32)
    parts, marks, t = [gap], [], len(gap)
    for u in utterances:
        u = np.pad(u, (0, -len(u) % frame))
        marks.append((t / sr, t / sr + speech_onset(u)))
        parts += [u, gap]
        t += len(u) + len(gap)
    return np.concatenate(parts), marks
