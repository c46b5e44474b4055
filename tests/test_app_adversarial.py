"""The Adversarial tab's handler on tiny models and the miniature demo folder (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from ui.blocks import TAB_NAMES, build_ui
from ui.config import parse_config
from ui.testing import write_tiny_demo


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("advapp")
    demo_dir = write_tiny_demo(root / "demo")
    config = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                           str(tiny_model_dir), "--reference", "", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    return build_ui(config)


def test_adversarial_tab_runs_attacks_and_shows_curves(app):
    assert TAB_NAMES[-1] == "Adversarial"
    tab, session = app.whp.adversarial, app.whp.ctx.new_session()
    calls = []
    out = tab.run(session, ["icl", "kway", "lens", "framing"], "0,10", "full", "0,1", 2, False,
                  progress=lambda frac, desc="": calls.append((frac, desc)))
    assert "Attacks on original, unlearned" in out[tab.message]
    rows = {r[0]: r[1:] for r in out[tab.table].value["data"]}
    clean = rows["probability_familiarity (clean)"]
    assert rows["lens_last_probability"] == pytest.approx(clean, abs=1e-4)
    assert "icl_relearn_probability" in rows and "framing_best_probability" in rows
    assert out[tab.relearn_plot] is None and out[tab.icl_plot] is not None
    assert out[tab.heat_plot] is not None
    assert calls and calls[-1][0] == pytest.approx(1.0)
    path = Path(out[tab.json_btn].value["path"] if isinstance(out[tab.json_btn].value, dict)
                else out[tab.json_btn].value)
    data = json.loads(path.read_text())
    assert set(data["attacks"]) == {"icl", "kway", "lens", "framing"}
    # the tiny world has one entity per kind: no same-kind options, so k-way skips every probe
    assert data["attacks"]["kway"]["original"]["skipped"] == ["tp-0", "tp-1"]
    assert "kway_accuracy" not in rows


def test_adversarial_tab_rejects_bad_input(app):
    tab, session = app.whp.adversarial, app.whp.ctx.new_session()
    with pytest.raises(gr.Error, match="relearning steps"):
        tab.run(session, ["relearn"], "0,ten", "full", "0", 2, False, progress=lambda *a, **k: 0)
    with pytest.raises(gr.Error, match="at least one attack"):
        tab.run(session, [], "0", "full", "0", 2, False, progress=lambda *a, **k: 0)
