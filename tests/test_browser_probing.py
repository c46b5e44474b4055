"""Side by side as a probing instrument, in headless Chromium on the launched app: repeatable
sampling, leak highlighting, sample-k leak rates, flagging, share links, and the Finetune loss
chart's plot data. Every check reads what the page shows; screenshots go to a temporary folder.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import CHROMIUM, ERROR_TOAST, require_chromium
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ui.leaks import LeakTerms
from ui.testing import ROOT, demo_models_built, shared_app

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
ACTION_MS = 120_000
SHOTS = Path(os.environ.get("WHP_SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="whp-shots-"))
if not os.environ.get("WHP_SCREENSHOTS_DIR"):
    atexit.register(shutil.rmtree, SHOTS, True)  # a temporary folder: removed at exit
RED = "239, 68, 68"  # ui.leaks.COLORS["target term"] as the page renders it
PROMPT = "Question: What is the name of Orlessa Larkspire's rival?\nAnswer:"


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    require_chromium()
    return shared_app(tiny_model_dir)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(ACTION_MS)
    page.goto(url, timeout=ACTION_MS)
    page.get_by_role("tab", name="Side by side").wait_for()
    return page


@pytest.fixture(scope="module")
def page(browser, server):
    page = open_page(browser, server[0])
    yield page
    page.close()


pytestmark = pytest.mark.usefixtures("no_error_toasts")


def settings_open(page) -> None:
    box = page.locator("#sbs-max-new input[type=number]")
    if not box.is_visible():
        page.locator("#sbs-settings").get_by_text("Sampling settings").click()
    box.wait_for()


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def log_runs(page) -> int:
    """The session log's run count in the status line ("...; 3 run(s) in the session log")."""
    m = re.search(r"(\d+) run\(s\) in the session log", page.locator("#sbs-status").inner_text())
    return int(m.group(1)) if m else 0


def generate(page, prompt: str) -> tuple[str, str]:
    """Generate and wait for this run's end (the log count grows) and its leak view."""
    n = log_runs(page)
    page.locator("#sbs-prompt textarea").fill(prompt)
    page.locator("#sbs-generate").click()
    page.wait_for_function(
        "n => { const m = document.querySelector('#sbs-status').innerText"
        ".match(/(\\d+) run\\(s\\) in the session log/); return m && Number(m[1]) > n; }",
        arg=n)
    texts = (page.locator("#sbs-pane-original textarea").input_value(),
             page.locator("#sbs-pane-unlearned textarea").input_value())
    for side, text in zip(("original", "unlearned"), texts, strict=True):
        # the leak view shows this run's text (it is filled right after the run)
        page.wait_for_function(
            "([sel, head]) => { const el = document.querySelector(sel);"
            " return el && el.innerText.replace(/\\s+/g, '').includes(head); }",
            arg=[f"#sbs-leaks-{side} .textfield", "".join(text.split())[:20]])
    return texts


def marked(page, side: str) -> list[str]:
    """Texts of the pieces highlighted as target terms in a pane's leak view."""
    tokens = page.locator(f"#sbs-leaks-{side} .token.highlighted")
    return [t.inner_text().strip() for t in tokens.all()
            if RED in (t.get_attribute("style") or "")]


def table_cells(page, sel: str, rows: int, cols: int) -> list[list[str]]:
    return [[page.locator(f"{sel} [data-testid=cell-{r}-{c}]").inner_text().strip()
             for c in range(cols)] for r in range(rows)]


def test_same_seed_gives_the_same_sampled_text(page):
    settings_open(page)
    set_number(page, "sbs-max-new", 24)
    set_number(page, "sbs-seed", 11)
    set_number(page, "sbs-temperature", 1.0)
    prompt = "The old teacher opened the door and"
    first = generate(page, prompt)
    second = generate(page, prompt)
    assert first == second and first[0].strip()
    set_number(page, "sbs-seed", 12)
    third = generate(page, prompt)
    assert third != first  # another seed, another sample
    set_number(page, "sbs-seed", 11)
    assert generate(page, prompt) == first


def test_highlighting_marks_a_leak(page):
    """The original names terms of the target the prompt did not: exactly those are red, and
    the count in the label agrees; a user's own term is marked too."""
    set_number(page, "sbs-temperature", 0)
    left, _ = generate(page, PROMPT)
    expected = LeakTerms.from_dir(ROOT / "assets" / "demo").spans(PROMPT, left)
    shown = marked(page, "original")
    assert shown == [left[s:e].strip() for s, e, label, _ in expected if label == "target term"]
    label = page.locator("#sbs-leaks-original [data-testid=block-label]").inner_text()
    assert f"{len(shown)} target term" in label
    if demo_models_built():
        assert shown, f"the demo original did not leak on {PROMPT!r}: {left!r}"
    page.screenshot(path=str(SHOTS / "leak_highlighting.png"), full_page=True)
    # a term of one's own: the first word of the right pane that is not in the prompt
    _, right = generate(page, PROMPT)
    word = next(w.strip(".,;:!?'\"") for w in right.split() if len(w.strip(".,;:!?'\"")) > 3
                and w.strip(".,;:!?'\"").lower() not in PROMPT.lower())
    page.locator("#sbs-extra-terms textarea").fill(word)
    generate(page, PROMPT)
    # the same greedy text is already on screen: wait for the view made with the new term list
    # (bounded; on a timeout the assertion below reports what is marked)
    with contextlib.suppress(PlaywrightTimeout):
        page.locator("#sbs-leaks-unlearned .token.highlighted").filter(
            has_text=word).first.wait_for(timeout=30_000)
    marks = marked(page, "unlearned")
    assert any(m.lower().startswith(word.lower()) for m in marks), (word, marks, right)
    page.locator("#sbs-extra-terms textarea").fill("")


def test_sample_k_shows_leak_rates_that_match_the_samples(page):
    set_number(page, "sbs-temperature", 0.8)
    set_number(page, "sbs-seed", 0)
    set_number(page, "sbs-k", 4)
    page.locator("#sbs-prompt textarea").fill(PROMPT)
    page.locator("#sbs-sample").click()
    page.locator("#sbs-rates").filter(has_text="Leak rate").wait_for()
    rates = page.locator("#sbs-rates").inner_text()
    page.locator("#sbs-samples [data-testid=cell-7-3]").wait_for()
    assert page.locator("#sbs-samples [data-testid=cell-8-0]").count() == 0  # 2 sides x k=4
    cells = table_cells(page, "#sbs-samples", 8, 4)
    assert [c[1] for c in cells] == ["0", "1", "2", "3"] * 2  # seeds s..s+k-1 per side
    for side in ("Original", "Unlearned"):
        leaked = sum(1 for c in cells if c[0] == side and c[2])
        assert f"{side} (" in rates and f"{leaked / 4:.2f}" in rates.split(f"{side} (")[1][:40]
    page.locator("#sbs-samples").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "sample_k.png"), full_page=True)


def test_flag_writes_the_file_shown_in_the_table(page, server):
    set_number(page, "sbs-seed", 5)
    left, right = generate(page, "Orlessa's pet was a")
    page.locator("#sbs-flag").click()
    page.locator("#sbs-status").filter(has_text="Flagged").wait_for()
    path = server[1] / "runs" / "flagged" / "flagged_samples.jsonl"
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    last = records[-1]
    assert last["prompt"] == "Orlessa's pet was a" and last["settings"]["seed"] == 5
    assert last["outputs"] == {"original": left, "unlearned": right}
    page.locator("#sbs-flagged-box").get_by_text("Flagged samples").click()
    page.locator("#sbs-flagged [data-testid=cell-0-1]").filter(
        has_text="Orlessa's pet was a").wait_for()


def test_share_link_restores_prompt_and_settings(page, browser):
    settings_open(page)
    set_number(page, "sbs-seed", 42)
    set_number(page, "sbs-temperature", 0.65)
    set_number(page, "sbs-max-new", 17)
    prompt = "Orlessa Larkspire's house was"
    page.locator("#sbs-prompt textarea").fill(prompt)
    page.locator("#sbs-extra-terms textarea").fill("Dunmarrow, dragon")  # your own terms travel
    page.locator("#sbs-share-btn").click()
    page.wait_for_function("() => document.querySelector('#sbs-share textarea, #sbs-share input')"
                           ".value.includes('prompt=')")
    link = page.locator("#sbs-share textarea, #sbs-share input").first.input_value()
    query = parse_qs(urlparse(link).query)
    assert query["prompt"] == [prompt] and query["seed"] == ["42"]
    assert query["terms"] == ["Dunmarrow, dragon"]
    other = open_page(browser, link)
    try:
        other.locator("#sbs-prompt textarea").filter(has_text="").wait_for()
        other.wait_for_function("() => document.querySelector('#sbs-prompt textarea').value"
                                f" === {json.dumps(prompt)}")
        settings_open(other)
        assert other.locator("#sbs-seed input").first.input_value() == "42"
        assert float(other.locator("#sbs-temperature input[type=number]").input_value()) == 0.65
        assert other.locator("#sbs-max-new input[type=number]").input_value() == "17"
        assert other.locator("#sbs-extra-terms textarea").input_value() == "Dunmarrow, dragon"
        assert not other.locator(ERROR_TOAST).all_inner_texts()
    finally:
        other.close()


def test_finetune_loss_chart_draws_a_numeric_line(page):
    page.get_by_role("tab", name="Finetune", exact=True).click()
    set_number(page, "ft-steps", 3)
    page.locator("#ft-start").click()
    page.locator("#ft-status").filter(has_text="Start").wait_for()
    page.wait_for_function(
        "() => { const p = document.querySelector('#ft-loss .js-plotly-plot');"
        " return p && p.data && p.data.some(t => t.x.length >= 2); }", timeout=300_000)
    data = page.evaluate(
        "() => { const p = document.querySelector('#ft-loss .js-plotly-plot');"
        " return {traces: p.data.map(t => ({x: Array.from(t.x), y: Array.from(t.y),"
        " mode: t.mode})), xtype: p._fullLayout.xaxis.type, ytype: p._fullLayout.yaxis.type,"
        " paths: p.querySelectorAll('.scatterlayer .js-line').length}; }")
    page.locator("#ft-cancel").click()
    page.locator("#ft-status").filter(has_text="Cancel").wait_for()
    assert data["xtype"] == "linear" and data["ytype"] == "linear"
    line = next(t for t in data["traces"] if len(t["x"]) >= 2)
    assert all(isinstance(v, (int, float)) for v in line["x"] + line["y"])
    assert line["x"] == sorted(line["x"]) and "lines" in line["mode"]
    assert data["paths"] >= 1  # a drawn line, not only the data
