"""Public mode in headless Chromium: finetune, full reports and run loading are not offered to a
visitor; the operator password shows them for that session only."""

from __future__ import annotations

import pytest
from conftest import CHROMIUM, ERROR_TOAST, require_chromium
from test_browser_app import ARGS, open_tab

from ui.testing import free_port, launch_app, stop_app, write_tiny_demo

PASSWORD = "op-secret-2"
GATED = ["#ft-start", "#ft-load", "#report-run"]
TIMEOUT = 120_000


@pytest.fixture(scope="module")
def url(tiny_model_dir, tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("public")
    demo = write_tiny_demo(root / "demo")
    port = free_port()
    proc = launch_app(["--original", str(tiny_model_dir), "--unlearned", str(tiny_model_dir),
                       "--reference", "", "--demo-dir", str(demo), "--runs-dir",
                       str(root / "runs"), "--public", "on"], port, root / "app.log",
                      env={"WHP_OPERATOR_PASSWORD": PASSWORD})
    yield f"http://127.0.0.1:{port}/"
    stop_app(proc)


@pytest.fixture(scope="module")
def browser(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def new_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT)
    page.goto(url, timeout=TIMEOUT)
    page.get_by_role("tab", name="Side by side").wait_for()
    return page


def hidden(page, selector: str) -> bool:
    return page.locator(selector).count() == 0 or not page.locator(selector).first.is_visible()


def test_visitor_is_not_offered_finetune_reports_or_run_loading(browser, url):
    page = new_page(browser, url)
    assert page.locator("#operator").is_visible()
    open_tab(page, "Finetune")
    page.locator("#ft-status").wait_for()
    assert hidden(page, "#ft-start") and hidden(page, "#ft-load")
    assert page.get_by_role("button", name="Load selected into right-hand side").count() == 0
    open_tab(page, "Report")
    assert hidden(page, "#report-run")
    # a wrong password is a readable message and unlocks nothing
    page.locator("#operator").get_by_text("Operator").first.click()
    page.locator("#operator-password input").fill("guess")
    page.locator("#operator-login").click()
    page.locator(ERROR_TOAST).filter(has_text="Wrong operator password").wait_for()
    open_tab(page, "Finetune")
    assert hidden(page, "#ft-start")
    page.close()


def test_operator_login_shows_the_controls_for_that_session_only(browser, url):
    page = new_page(browser, url)
    page.locator("#operator").get_by_text("Operator").first.click()
    page.locator("#operator-password input").fill(PASSWORD)
    page.locator("#operator-login").click()
    page.locator("#operator-status").filter(has_text="Logged in as operator").wait_for()
    open_tab(page, "Finetune")
    page.locator("#ft-start").wait_for(state="visible")
    assert page.get_by_role("button", name="Load selected into right-hand side").is_visible()
    open_tab(page, "Report")
    page.locator("#report-run").wait_for(state="visible")
    other = new_page(browser, url)  # another visitor's session is still locked
    open_tab(other, "Finetune")
    other.locator("#ft-status").wait_for()
    assert hidden(other, "#ft-start")
    other.close()
    page.close()
