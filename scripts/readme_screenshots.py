"""Regenerate every picture in docs/screenshots/ (the README shows them).

    python scripts/readme_screenshots.py

Runs the browser tests with `WHP_SCREENSHOTS_DIR=docs/screenshots` (the tab pictures; without
that variable the tests write to a temporary folder and leave the tree alone), then
`scripts/demo_screenshots.py` (the demo-model pictures). Needs Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"


def main() -> int:
    env = {**os.environ, "WHP_SCREENSHOTS_DIR": str(SHOTS), "PYTHONPATH": str(ROOT)}
    steps = [[sys.executable, "-m", "pytest", "-q", "tests/test_browser_app.py"],
             [sys.executable, "scripts/demo_screenshots.py"]]
    for cmd in steps:
        print("+", " ".join(cmd), flush=True)
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if code:
            return code
    print(f"pictures written to {SHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
