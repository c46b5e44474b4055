"""Handler tests on the embedded demo models (committed: a missing one fails the test)."""

from __future__ import annotations

import pytest
from conftest import demo_model_dir

from ui.blocks import build_ui
from ui.config import parse_config


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    for name in ("baseline", "reference", "unlearned"):
        demo_model_dir(name)
    runs = tmp_path_factory.mktemp("demo_runs")
    return build_ui(parse_config(["--runs-dir", str(runs)], env={}))


def test_default_start_uses_the_demo_models(app):
    ctx = app.whp.ctx
    assert ctx.startup.sides["original"].endswith("assets/models/baseline")
    assert ctx.startup.reference.endswith("assets/models/reference")
    assert ctx.startup.sides["unlearned"].endswith("assets/models/unlearned")
    assert not any("instead of an unlearned model" in n for n in ctx.startup.notices)


def test_demo_side_by_side_produces_words(app):
    tab = app.whp.side_by_side
    session = app.whp.ctx.new_session()
    final = list(tab.generate(session, "The old teacher opened the door and", "completion", 24,
                              0.7, 0.95, 0, 1.0, 0, "auto", ""))[-1]
    for side in ("original", "unlearned"):
        assert len(final[tab.panes[side]].split()) >= 3


def test_demo_token_probabilities_show_the_knowledge_gap(app):
    """On a target probe the original gives the answer more probability than the reference."""
    tab = app.whp.tokens
    session = app.whp.ctx.new_session()
    label = next(iter(tab.choices))
    probe = tab.choices[label]
    out = tab.show(session, probe.prompt, 10, probe.answer)
    headers = out[tab.chosen_table].value["headers"]
    row = out[tab.chosen_table].value["data"][0]
    probs = dict(zip(headers[1:], row[1:], strict=True))
    assert {"original", "reference"} <= set(probs)
    assert probs["original"] > probs["reference"]
