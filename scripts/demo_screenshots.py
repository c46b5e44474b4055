"""Screenshots of the app on the embedded demo models for the README (docs/screenshots/demo_*).

    python scripts/demo_screenshots.py [--port 7871]

Starts `python app.py` (demo models, CPU), drives it in headless Chromium, saves the pictures.
The browser tests make their own screenshots on tiny random models; these show the real demo.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
PROMPT = "Write a few lines about Cassiel Sallowby of Wyrmcourt: his pet, his friends. Cassiel"


def wait_up(url: str, seconds: float = 120) -> None:
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"app did not answer at {url} within {seconds:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=7871)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(args.port)], cwd=ROOT,
                           env=env)
    url = f"http://127.0.0.1:{args.port}"
    try:
        wait_up(url)
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_role("tab", name="Side by side", exact=True).click()
            page.locator("#sbs-prompt textarea").fill(PROMPT)
            page.locator("#sbs-generate").click()
            page.locator("#sbs-status").filter(has_text="Done").wait_for()
            page.screenshot(path=str(SHOTS / "demo_side_by_side.png"))
            page.get_by_role("tab", name="Token probabilities", exact=True).click()
            page.locator("#tokens-show").click()
            page.locator("#tokens-plot .js-plotly-plot").wait_for()
            page.locator("#tokens-prompt").evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / "demo_token_probabilities.png"))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"wrote {SHOTS}/demo_side_by_side.png, demo_token_probabilities.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
