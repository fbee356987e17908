"""Put Silero VAD (MIT, Silero Team) into a bundle: the wheel's 16 kHz "sequence" ONNX graph (one
call scores a block of frames, bit-exact with its per-frame graph), pinned by sha256, its licence
beside it, and the manifest's ``vad`` entry.

    python -m export.vad [--out rtser/bundle]      # adds it to an existing bundle in place
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from rtser.bundle import DEFAULT, sha256

from . import sources
from .manifest import save

FILE, LICENCE = "silero_vad_16k_sequence.onnx", "silero_vad.LICENSE"


def add_silero(out: Path, manifest: dict) -> None:
    """Copy the graph and licence into ``out`` and describe them in ``manifest`` (not written)."""
    onnx, licence = sources.silero_vad()
    old = manifest.get("vad", {}).get("silero", {}).get("file")
    if old and old != FILE:  # a bundle of an earlier graph
        manifest["files"].pop(old, None)
        (out / old).unlink(missing_ok=True)
    shutil.copyfile(onnx, out / FILE)
    shutil.copyfile(licence, out / LICENCE)
    digest = sha256(out / FILE)
    manifest["vad"] = {
        "silero": {
            "file": FILE,
            "sha256": digest,
            "version": "silero-vad 6.2.3",
            "licence": f"MIT, Silero Team (see {LICENCE})",
        }
    }
    manifest["files"][FILE] = digest
    manifest["files"][LICENCE] = sha256(out / LICENCE)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=DEFAULT)
    args = ap.parse_args()
    manifest = json.loads((args.out / "manifest.json").read_text())
    add_silero(args.out, manifest)
    save(args.out, manifest)
    print(f"{args.out}: {FILE} {manifest['vad']['silero']['sha256'][:12]}")


if __name__ == "__main__":
    main()
