"""Write one named section of a Markdown report, leaving the other sections alone; keep a run's
raw results in ``build/``."""
from __future__ import annotations

import json
import platform
import re
from pathlib import Path


def machine() -> str:
    import os
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


BUILD = Path(__file__).resolve().parents[1] / "build"


def write_json(name: str, result) -> Path:
    """A script's results as ``build/<name>.json`` (read by ``export.bundle``, kept for re-reading)."""
    path = BUILD / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False))
    return path


def write_section(path: Path, name: str, body: str, title: str = "# Benchmarks\n") -> None:
    text = path.read_text() if path.exists() else title
    block = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
