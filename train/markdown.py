"""Write one named section of a Markdown report, leaving the other sections alone; keep a run's
raw results in ``artifacts/``."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path


def machine() -> str:
    import os

    cpu = platform.processor()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in info.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    system = f"{platform.system()} {platform.machine()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def write_json(name: str, result) -> Path:
    """A script's results as ``artifacts/<name>.json`` (read by ``export.bundle``, kept for
    re-reading)."""
    path = ARTIFACTS / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False))
    return path


def write_section(path: Path, name: str, body: str, title: str = "# Benchmarks\n") -> None:
    text = path.read_text() if path.exists() else title
    block = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
