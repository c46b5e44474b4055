"""The real UI in headless Chromium: every tab opened, one action run in each, screenshots saved.

Uses the demo models when they are built (readable screenshots), else the tiny test model.
Screenshots go to a temporary folder, or to `$WHP_SCREENSHOTS_DIR` when set: the README's pictures
in docs/screenshots/ are regenerated on purpose by `python scripts/readme_screenshots.py`, never
as a side effect of running the tests.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import CHROMIUM, ERROR_TOAST, require_chromium

from ui.testing import shared_app

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
SHOTS = Path(os.environ.get("WHP_SCREENSHOTS_DIR") or "")
if not os.environ.get("WHP_SCREENSHOTS_DIR"):
    SHOTS = Path(tempfile.mkdtemp(prefix="whp-screenshots-"))
    atexit.register(shutil.rmtree, SHOTS, True)
ACTION_MS = 120_000  # generous, bounded wait for one action on a loaded 2-core machine

@pytest.fixture(scope="module")
def url(tiny_model_dir):
    require_chromium()
    return shared_app(tiny_model_dir)[0]


@pytest.fixture(scope="module")
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(ACTION_MS)
        page.goto(url, timeout=ACTION_MS)
        page.get_by_role("tab", name="Side by side").wait_for()
        yield page
        browser.close()


pytestmark = pytest.mark.usefixtures("no_error_toasts")


def shot(page, name: str, top: str | None = None) -> None:
    """Viewport screenshot; `top`: a selector scrolled to the top of the view first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if top:
        page.locator(top).evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.evaluate("window.scrollTo(0, 0)")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def wait_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).wait_for(timeout=ACTION_MS)


def set_number(page, slider_id: str, value: int) -> None:
    box = page.locator(f"#{slider_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_errors_are_readable_messages(page):
    open_tab(page, "Side by side")
    page.locator("#sbs-prompt textarea").fill("")
    page.locator("#sbs-generate").click()
    page.locator(ERROR_TOAST).filter(has_text="Type a prompt first").wait_for()
    page.locator("[data-testid=toast-close]").first.click()
    page.locator(ERROR_TOAST).first.wait_for(state="detached")


def test_side_by_side_generate_and_stop(page):
    open_tab(page, "Side by side")
    page.locator("#sbs-prompt textarea").fill("The old teacher opened the door and")
    page.locator("#sbs-generate").click()
    wait_text(page, "#sbs-status", "Done")
    left = page.locator("#sbs-pane-original textarea").input_value()
    right = page.locator("#sbs-pane-unlearned textarea").input_value()
    assert left.strip() and right.strip()
    shot(page, "side_by_side")
    page.locator("#sbs-settings").get_by_text("Sampling settings").click()
    set_number(page, "sbs-max-new", 480)  # prompt + new tokens fit 512
    # sampling is seeded now (seed 0): at 0.8 the demo models end at EOS within a second;
    # at temperature 2 the original writes a few hundred tokens, long enough to be stopped
    set_number(page, "sbs-temperature", 2)
    # Stop at once: 480 tokens take the demo models ~3 s, but a seed whose sample reaches EOS
    # within a few tokens ends before the click arrives; such a run says "Done" and the click
    # adds "nothing to stop", so try the next seed (bounded). Stop must stop one of them.
    outcomes = []
    for seed in range(8):
        set_number(page, "sbs-seed", seed)
        page.locator("#sbs-generate").click()
        wait_text(page, "#sbs-status", "Generating")  # the new run started (panes were cleared)
        page.locator("#sbs-stop").click()
        status = page.locator("#sbs-status").filter(
            has_text=re.compile("Stopped|Done|Nothing to stop"))
        status.wait_for(timeout=ACTION_MS)
        outcomes.append(status.inner_text())
        if "Stopped" in outcomes[-1]:
            break
    assert "Stopped" in outcomes[-1], outcomes


def test_completion_probes_run(page):
    open_tab(page, "Completion probes")
    set_number(page, "probes-limit", 4)
    page.locator("#probes-run").click()
    wait_text(page, "#probes-message", "Ran 4 probes")
    assert page.locator("#probes-scores").get_by_text("original").count() >= 1
    shot(page, "completion_probes", top="#probes-run")


def test_token_probabilities_plot_renders(page):
    open_tab(page, "Token probabilities")
    page.locator("#tokens-show").click()
    page.locator("#tokens-plot .js-plotly-plot").wait_for(timeout=ACTION_MS)
    assert page.locator("#tokens-plot .js-plotly-plot .bars path").count() > 0
    shot(page, "token_probabilities", top="#tokens-prompt")


def test_anchored_terms_edit_a_row(page):
    open_tab(page, "Anchored terms")
    key = page.locator("#anchors-table [data-testid=cell-0-0]").inner_text().strip()
    cell = page.locator("#anchors-table [data-testid=cell-0-1]")
    cell.dblclick()
    editor = page.locator("#anchors-table textarea, #anchors-table input[type=text]").first
    editor.fill(key)  # a translation equal to its key is an error
    editor.press("Enter")
    page.locator("#anchors-validate").click()
    wait_text(page, "#anchors-message", "error")
    page.locator("#anchors-table [role=gridcell]").filter(
        has_text="equals the key").first.wait_for()
    shot(page, "anchored_terms")
    page.get_by_role("button", name="Reload demo dictionary").click()
    page.wait_for_function("() => !document.querySelector('#anchors-message').innerText"
                           ".includes('1 error')")
    page.locator("#anchors-preview").click()
    page.locator("#anchors-original").get_by_text("anchored term").first.wait_for()
    shot(page, "anchored_terms_preview", top="#anchors-preview")


def test_finetune_start_and_cancel(page):
    open_tab(page, "Finetune")
    page.locator("#ft-start").click()
    wait_text(page, "#ft-status", "Start")
    page.locator("#ft-cancel").click()
    wait_text(page, "#ft-status", "Cancelled")
    shot(page, "finetune")


def test_report_builds(page):
    open_tab(page, "Report")
    set_number(page, "report-limit", 3)
    page.locator("#report-run").click()
    wait_text(page, "#report-message", "Report on")
    page.locator("#report-plot .js-plotly-plot").wait_for()
    assert page.locator("#report-table").get_by_text("probability_familiarity").count() >= 1
    assert page.locator("#report-table").get_by_text("lower = forgot more").count() >= 1
    shot(page, "report", top="#report-run")
