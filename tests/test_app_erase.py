"""The In-context unlearning tab's handlers on tiny models and small generated tasks (no server)."""

from __future__ import annotations

import gradio as gr
import pytest

from ui.blocks import build_ui
from ui.config import parse_config
from ui.tab_erase import ACC_HEADERS, LOG_HEADERS, PROMPT_HEADERS
from ui.testing import write_tiny_demo
from unlearn.demo.tasks import write_tasks


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("app_erase")
    demo_dir = write_tiny_demo(root / "demo")
    write_tasks(demo_dir / "tasks", n_train=40, n_test=16, seed=0)
    config = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                           str(tiny_model_dir), "--reference", "", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    return build_ui(config)


def test_select_answer_delete_and_accuracy(app):
    tab, session = app.whp.erase, app.whp.ctx.new_session()
    out = tab.select(session, "moods", 4, 1.0, progress=lambda *a, **k: None)
    view = out[tab.view]
    prompt = out[tab.prompt].value
    assert [r[1] for r in prompt["data"]] == view.state.prompt_ids() and len(prompt["data"]) == 4
    # every table keeps its column names, empty ones too (not 1, 2, 3 ...)
    assert prompt["headers"] == PROMPT_HEADERS
    assert out[tab.log].value["headers"] == LOG_HEADERS
    assert out[tab.acc].value["headers"] == ACC_HEADERS
    assert "moods" in out[tab.status]
    answers = tab.answer(session, view, "at the old park on Monday, Tom")[tab.answers]
    rows = answers.value["data"]
    assert [r[0] for r in rows] == view.task.labels
    for side in (1, 2):
        assert sum(r[side] for r in rows) == pytest.approx(1.0, abs=1e-3)
    first = tab.evaluate(session, view, 16)
    view = first[tab.view]
    acc = first[tab.acc].value["data"]
    assert len(acc) == 2 and all(0 <= r[2] <= 1 for r in acc)
    clicked = gr.SelectData(None, {"index": [1, 2], "value": "x", "selected": True})
    assert tab.pick_row(view, clicked)[tab.ids] == view.state.prompt_ids()[1]  # row 2's id
    chosen = view.state.prompt_ids()[0]
    out = tab.delete(view, chosen)
    assert "recomputed" in out[tab.status] and chosen not in out[tab.view].state.prompt_ids()
    assert out[tab.log].value["data"][0][2] == "recompute"
    assert chosen in view.state.prompt_ids()  # the old state object is not modified
    after = tab.evaluate(session, out[tab.view], 16)[tab.acc].value["data"]
    assert [r[0] for r in after] == [0, 0, 1, 1]  # before and after the deletion
    # a rejected deletion warns and rewrites only the status: the tables stay as they were
    again = tab.delete(out[tab.view], chosen)
    assert set(again) == {tab.status}
    assert again[tab.status].startswith(
        f"Nothing deleted: Unknown or already deleted id: {chosen}. Click a row")
    assert "ids: nonsense, 99999" in tab.delete(out[tab.view], "nonsense, 99999")[tab.status]
    assert "Select a prompt" in tab.delete(None, "x")[tab.status]
    assert "Type or click" in tab.delete(out[tab.view], " , ")[tab.status]
    assert tab.cost_chart(out[tab.view], 4)[tab.cost] is not None


def test_the_in_context_demo_model_beside_the_original_answers_too(tiny_model_dir,
                                                                    tmp_path_factory):
    """A model folder `icl` next to the original's (as `build-demo --only icl` writes it) joins
    the tab's answers and accuracy rows; without it (above) only the two sides answer."""
    import shutil

    from ui.tab_erase import ICL_ROLE

    root = tmp_path_factory.mktemp("app_erase_icl")
    for name in ("baseline", "icl"):
        shutil.copytree(tiny_model_dir, root / "models" / name)
    demo_dir = write_tiny_demo(root / "demo")
    write_tasks(demo_dir / "tasks", n_train=40, n_test=16, seed=0)
    config = parse_config(["--original", str(root / "models" / "baseline"), "--unlearned",
                           str(tiny_model_dir), "--reference", "", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    tab = build_ui(config).whp.erase
    session = tab.ctx.new_session()
    assert tab.icl == str(root / "models" / "icl")
    view = tab.select(session, "colours", 4, 1.0, progress=lambda *a, **k: None)[tab.view]
    answers = tab.answer(session, view, "in the park on Monday, the small lamp")[tab.answers]
    assert answers.value["headers"] == ["label", "original", "unlearned", ICL_ROLE]
    rows = tab.evaluate(session, view, 8)[tab.acc].value["data"]
    assert [r[1] for r in rows] == ["original", "unlearned", ICL_ROLE]
