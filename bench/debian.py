"""Real recordings from Debian packages (IVR prompts, hold music): downloaded and unpacked once
into a folder of ``bench/out/`` (``apt-get download``: no root, no install)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def unpacked(package: str, folder: Path) -> Path:
    """``package``'s files unpacked under ``folder`` (downloaded on the first call)."""
    if not folder.exists():
        folder.mkdir(parents=True)
        subprocess.run(["apt-get", "download", package], cwd=folder, check=True)
        deb = next(folder.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder)], check=True)
    return folder
