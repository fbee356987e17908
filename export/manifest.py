"""A bundle's ``manifest.json``, written alike by every export step: its files' hashes sorted by
name, indented JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rtser.bundle import sha256


def save(out: Path, manifest: dict, changed: Iterable[str] = ()) -> None:
    """``manifest`` into ``out``, with the sha256 of the files ``changed`` in it taken afresh."""
    for name in changed:
        manifest["files"][name] = sha256(out / name)
    manifest["files"] = dict(sorted(manifest["files"].items()))
    text = json.dumps(manifest, indent=1, allow_nan=False) + "\n"
    (out / "manifest.json").write_text(text)
