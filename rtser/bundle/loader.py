"""The model bundle: ``manifest.json`` + ONNX heads and int8 encoders, verified by sha256.

An overlay bundle (``rtser enroll``) holds only new heads; the encoders it names by hash are
taken from the bundle it extends (by default the one shipped inside the package).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path

from ..errors import RtserError

FORMAT = 2  # 2: heads read streaming chunk features (rtser.pipeline.features)
DEFAULT = Path(__file__).resolve().parent
ZIP_MAGIC = b"PK\x03\x04"
REQUIRED = {
    "format": int,
    "window_s": (int, float),
    "hop_s": (int, float),
    "encoders": dict,
    "languages": dict,
    "files": dict,
}


def file_hash(path: Path) -> hashlib._Hash:
    """A sha256 object fed with the file's bytes, read 1 MiB at a time (more may be added)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def sha256(path: Path) -> str:
    return file_hash(path).hexdigest()


class HeadFormat(str, Enum):
    ONNX = "onnx"  # a graph exported from torch (export.bundle)
    NUMPY = "npz"  # a NumpyHead's arrays (rtser enroll, the any head)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, path: Path) -> HeadFormat:
        """By the file's content: numpy's .npz is a zip archive, an ONNX graph is not."""
        with open(path, "rb") as f:
            return cls.NUMPY if f.read(4) == ZIP_MAGIC else cls.ONNX


@dataclass(frozen=True)
class Language:
    """One language of a bundle: its labels and head (in ``bundle``, an overlay or its base)."""

    code: str
    labels: list[str]
    head: Path
    bundle: Bundle = field(repr=False)
    metrics: dict = field(default_factory=dict)
    calibration: dict | None = None  # pipeline.calibration.Calibration's spec

    @cached_property
    def head_format(self) -> HeadFormat:
        return HeadFormat.of(self.head)


@dataclass(frozen=True)
class EnrolmentPrior:
    """The head over every emotion of the shipped corpora that enrolled classes may lean on."""

    head: Path
    labels: list[str]


@dataclass(frozen=True)
class SpeechGate:
    """The head that tells speech from music (classes: music, speech), and the probability of
    speech at or under which a span is music."""

    head: Path
    threshold: float


def check_manifest(manifest: dict, where: Path) -> None:
    """Fields and types the runtime reads, so a broken manifest is one clear error, not a crash."""
    if not isinstance(manifest, dict):
        raise RtserError(f"{where}: a bundle manifest must be a JSON object; rebuild the bundle")
    for key, kind in REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            what = "is missing" if key not in manifest else "has the wrong type"
            raise RtserError(f"{where}: the manifest's {key!r} {what}; rebuild the bundle")
    if not isinstance(manifest.get("extends"), (str, type(None))):
        raise RtserError(f"{where}: 'extends' must be a folder or null; fix the manifest")
    if not isinstance(manifest.get("shared", ""), str):
        raise RtserError(f"{where}: 'shared' must name the trunk's file; rebuild the bundle")
    prior = manifest.get("prior")
    if prior is not None and not (
        isinstance(prior, dict)
        and isinstance(prior.get("head"), str)
        and isinstance(prior.get("labels"), list)
    ):
        raise RtserError(f"{where}: 'prior' needs 'head' and 'labels'; rebuild the bundle")
    arousal = manifest.get("arousal")
    if arousal is not None and not (
        isinstance(arousal, dict) and isinstance(arousal.get("head"), str)
    ):
        raise RtserError(f"{where}: 'arousal' needs a 'head'; rebuild the bundle")
    speech = manifest.get("speech")
    if speech is not None and not (
        isinstance(speech, dict)
        and isinstance(speech.get("head"), str)
        and isinstance(speech.get("threshold"), (int, float))
        and 0 <= speech["threshold"] <= 1
    ):
        raise RtserError(
            f"{where}: 'speech' needs a 'head' and a 'threshold' in [0, 1]; rebuild the bundle"
        )
    for lang, spec in manifest["languages"].items():
        if not (
            isinstance(spec, dict)
            and isinstance(spec.get("labels"), list)
            and isinstance(spec.get("head"), str)
        ):
            raise RtserError(
                f"{where}: language {lang!r} needs 'labels' and 'head'; rebuild the bundle"
            )
    for name, spec in manifest["encoders"].items():
        if not (isinstance(spec, dict) and isinstance(spec.get("file"), str)):
            raise RtserError(f"{where}: encoder {name!r} needs a 'file'; rebuild the bundle")


class Bundle:
    """A model bundle folder (the one shipped with rtser by default), its manifest checked and, with
    ``verify``, every file's sha256. An overlay's languages come first, then its base's.

    >>> bundle = Bundle()
    >>> bundle.languages
    ['de', 'it', 'en', 'ur', 'any']
    >>> bundle.language("de").labels[:2]
    ['anger', 'boredom']
    """

    def __init__(
        self, path: str | Path | None = None, verify: bool = True, _below: tuple[Path, ...] = ()
    ):
        self.path = Path(path) if path else DEFAULT
        manifest = self.path / "manifest.json" if self.path.is_dir() else self.path
        if not manifest.is_file():
            raise RtserError(
                f"{self.path}: no bundle here (manifest.json missing); "
                "pass a folder made by export.bundle or rtser enroll"
            )
        self.path = manifest.parent
        try:
            self.manifest = json.loads(manifest.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise RtserError(f"{manifest}: not valid JSON ({e}); rebuild the bundle") from None
        fmt = self.manifest.get("format") if isinstance(self.manifest, dict) else None
        if fmt != FORMAT:
            raise RtserError(
                f"{manifest}: bundle format {fmt!r}, this rtser reads format {FORMAT}; "
                "upgrade rtser or rebuild the bundle"
            )
        check_manifest(self.manifest, manifest)
        self.base = None
        if "extends" in self.manifest:  # an overlay: null extends the bundle shipped with rtser
            base = self.path / (self.manifest["extends"] or DEFAULT)
            chain = (*_below, self.path.resolve())
            if base.resolve() in chain:
                raise RtserError(
                    f"{manifest}: 'extends' leads back to {base.resolve()} (a cycle); "
                    "point it at the base bundle, or null for the shipped one"
                )
            self.base = Bundle(base, verify, chain)
        if verify:
            self.verify()

    @property
    def languages(self) -> list[str]:
        own = list(self.manifest["languages"])
        return own + [
            lang for lang in (self.base.languages if self.base else []) if lang not in own
        ]

    def code(self, lang: str) -> str | None:
        """The bundle's code for ``lang`` as platforms write it (``EN``, ``en-US``, ``es_MX``), or
        None when the bundle has no head for it."""
        tag = lang.strip().replace("_", "-").lower()
        return next((c for c in (tag, tag.split("-")[0]) if c in self.languages), None)

    def language(self, lang: str | None) -> Language:
        """``lang`` (None: the only one; any case, a region tag ignored: ``code``), here or in
        the base bundle."""
        langs = self.languages
        if lang is None:
            if len(langs) != 1:
                raise RtserError(
                    f"this bundle holds {len(langs)} languages; choose one with --lang "
                    f"({', '.join(langs)})"
                )
            lang = langs[0]
        lang = self.code(lang) or lang
        if lang in self.manifest["languages"]:
            spec = self.manifest["languages"][lang]
            return Language(
                lang,
                list(spec["labels"]),
                self.file(spec["head"]),
                self,
                spec.get("metrics") or {},
                spec.get("calibration"),
            )
        if self.base and lang in self.base.languages:
            return self.base.language(lang)
        raise RtserError(f"language {lang!r} is not in this bundle; available: {', '.join(langs)}")

    def file(self, name: str) -> Path:
        """A file of this bundle, or an encoder file of the bundle it extends."""
        own = self.path / name
        if name in self.manifest["files"]:
            return own
        if self.base:
            return self.base.file(name)
        raise RtserError(f"{self.path}: the manifest lists no file {name!r}; rebuild the bundle")

    def encoder(self, name: str) -> Path:
        spec = self.manifest["encoders"].get(name)
        if spec is None:
            raise RtserError(
                f"{self.path}: the manifest lists no encoder {name!r}; rebuild the bundle"
            )
        path = self.file(spec["file"])
        if self.base and spec["sha256"] != self.base.manifest["files"].get(
            spec["file"], spec["sha256"]
        ):
            raise RtserError(
                f"{self.path}: encoder {name} differs from the bundle it extends; "
                "re-enroll against the installed bundle"
            )
        return path

    def vad_model(self, kind: str) -> Path:
        """The ONNX graph of a neural VAD (``manifest["vad"][kind]``), here or in the base
        bundle."""
        spec = self.manifest.get("vad", {}).get(kind)
        if spec is None:
            if self.base:
                return self.base.vad_model(kind)
            raise RtserError(
                f"{self.path}: this bundle has no {kind} VAD model; use --vad webrtc or "
                "rebuild the bundle (python -m export.vad)"
            )
        return self.file(spec["file"])

    def shared_trunk(self) -> Path | None:
        """The trunk new languages are enrolled on (``manifest["shared"]``, a ``NumpyHead`` without
        a classifier), here or in the base bundle; None when neither has one."""
        name = self.manifest.get("shared")
        if name is None:
            return self.base.shared_trunk() if self.base else None
        return self.file(name)

    def arousal_head(self) -> Path | None:
        """The head that rates arousal from any language's features (``manifest["arousal"]``), here
        or in the base bundle; None when neither has one."""
        spec = self.manifest.get("arousal")
        if spec is None:
            return self.base.arousal_head() if self.base else None
        return self.file(spec["head"])

    def speech_gate(self) -> SpeechGate | None:
        """``manifest["speech"]``, here or in the base bundle; None when neither has one."""
        spec = self.manifest.get("speech")
        if spec is None:
            return self.base.speech_gate() if self.base else None
        return SpeechGate(self.file(spec["head"]), float(spec["threshold"]))

    def enrolment_prior(self) -> EnrolmentPrior | None:
        """``manifest["prior"]``, here or in the base bundle; None when neither has one."""
        spec = self.manifest.get("prior")
        if spec is None:
            return self.base.enrolment_prior() if self.base else None
        return EnrolmentPrior(self.file(spec["head"]), list(spec["labels"]))

    def verify(self) -> None:
        for name, digest in self.manifest["files"].items():
            path = self.path / name
            if not path.is_file():
                raise RtserError(
                    f"{self.path}: bundle file {name} is missing; reinstall rtser or rebuild "
                    "the bundle"
                )
            if sha256(path) != digest:
                raise RtserError(
                    f"{self.path}: bundle file {name} fails its sha256 check (corrupt or "
                    "modified); reinstall rtser or rebuild the bundle"
                )

    @cached_property
    def size_bytes(self) -> int:
        return sum((self.path / n).stat().st_size for n in self.manifest["files"])

    def info(self) -> dict:
        m = self.manifest
        return {
            "path": str(self.path),
            "format": m["format"],
            "name": m.get("name"),
            "rtser_version": m.get("rtser_version"),
            "created": m.get("created"),
            "size_bytes": self.size_bytes,
            "window_s": m["window_s"],
            "hop_s": m["hop_s"],
            "encoders": {
                k: {"file": v["file"], "size_bytes": self.encoder(k).stat().st_size}
                for k, v in m["encoders"].items()
            },
            "languages": {
                lang.code: {"labels": lang.labels, "metrics": lang.metrics}
                for lang in map(self.language, self.languages)
            },
            "extends": str(self.base.path) if self.base else None,
        }
