"""The README's figures, written into docs/img/:

    python bench/figures.py   # example-timeline.png (rtser file --plot), live-view.png (Chromium)

The timeline is ``rtser file --plot`` on the bundled example; the live view is the page test's
screenshot (tests/test_page.py: a real rtser serve, a simulated call, headless Chromium)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    example = ROOT / "examples" / "ravdess-anger-actor01.flac"
    timeline = IMG / "example-timeline.png"
    rtser = [sys.executable, "-m", "rtser", "file", str(example), "--lang", "en"]
    subprocess.run([*rtser, "--plot", str(timeline), "--segments-only"], check=True)
    env = {**os.environ, "RTSER_SCREENSHOT": str(IMG / "live-view.png")}
    page_test = [sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_page.py")]
    subprocess.run(page_test, check=True, env=env, cwd=ROOT)
    print(f"wrote {timeline} and {IMG / 'live-view.png'}")


if __name__ == "__main__":
    main()
