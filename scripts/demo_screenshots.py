"""Screenshots of the app on the embedded demo models for the README (docs/screenshots/demo_*).

    python scripts/demo_screenshots.py [--port 7871]

Starts `python app.py` (demo models, CPU, a temporary runs folder), drives it in headless
Chromium and saves: Side by side with the leak check of an attack preset, Sample k times with
leak rates, Token probabilities, the Report's explained scores and the Finetune loss chart.
The browser tests write their screenshots to a temporary folder; these show the real demo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
PROMPT = "Write a few lines about Cassiel Sallowby of Wyrmcourt: his pet, his friends. Cassiel"
PRESET = "question/answer"  # the attack preset shown in the leak-check picture


def top(page, selector: str) -> None:
    page.locator(selector).first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)


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
    runs = tempfile.mkdtemp(prefix="whp-shots-runs-")
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(args.port), "--runs-dir",
                            runs], cwd=ROOT, env=env)
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
            page.locator("#sbs-attack input").click()
            page.get_by_role("option", name=PRESET).first.click()
            page.locator("#sbs-settings").get_by_text("Sampling settings").click()
            box = page.locator("#sbs-max-new input[type=number]")
            box.fill("32")
            box.press("Enter")
            page.locator("#sbs-settings").get_by_text("Sampling settings").click()
            page.locator("#sbs-generate").click()
            page.locator("#sbs-status").filter(has_text="Done").wait_for()
            page.locator("#sbs-leaks-original").filter(has_text="target term").wait_for()
            page.set_viewport_size({"width": 1280, "height": 1250})
            top(page, "#sbs-attack")
            page.screenshot(path=str(SHOTS / "demo_side_by_side.png"))
            page.set_viewport_size({"width": 1280, "height": 900})
            page.locator("#sbs-k input[type=number]").fill("20")
            page.locator("#sbs-k input[type=number]").press("Enter")
            page.locator("#sbs-sample").click()
            page.locator("#sbs-rates").filter(has_text="Leak rate").wait_for()
            page.wait_for_timeout(1000)
            top(page, "#sbs-probing")
            page.screenshot(path=str(SHOTS / "demo_sample_k.png"))
            page.get_by_role("tab", name="Token probabilities", exact=True).click()
            page.locator("#tokens-show").click()
            page.locator("#tokens-plot .js-plotly-plot").wait_for()
            top(page, "#tokens-prompt")
            page.screenshot(path=str(SHOTS / "demo_token_probabilities.png"))
            page.get_by_role("tab", name="Report", exact=True).click()
            page.locator("#report-limit input[type=number]").fill("10")
            page.locator("#report-limit input[type=number]").press("Enter")
            page.locator("#report-run").click()
            page.locator("#report-message").filter(has_text="Report on").wait_for()
            top(page, "#report-table")
            page.screenshot(path=str(SHOTS / "demo_report.png"))
            page.get_by_role("tab", name="Finetune", exact=True).click()
            page.locator("#ft-start").click()
            page.wait_for_function(
                "() => { const p = document.querySelector('#ft-loss .js-plotly-plot');"
                " return p && p.data && p.data.some(t => t.x.length >= 6); }", timeout=600_000)
            page.locator("#ft-cancel").click()
            page.locator("#ft-status").filter(has_text="Cancelled").wait_for()
            top(page, "#ft-status")
            page.screenshot(path=str(SHOTS / "demo_finetune.png"))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
        shutil.rmtree(runs, ignore_errors=True)
    print(f"wrote {SHOTS}/demo_side_by_side.png, demo_sample_k.png, "
          "demo_token_probabilities.png, demo_report.png, demo_finetune.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
