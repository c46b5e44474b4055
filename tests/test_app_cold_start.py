"""Cold start: the page is built before the models finish loading; handlers say the models are
loading; the loading banner goes and the handlers work once they are ready."""

from __future__ import annotations

import gradio as gr
import pytest

from ui.blocks import build_ui, make_context, refresh_loading
from ui.config import parse_config
from ui.store import ModelsLoading
from ui.testing import write_tiny_demo


@pytest.fixture()
def config(tiny_model_dir, tmp_path):
    demo_dir = write_tiny_demo(tmp_path / "demo")
    return parse_config(["--original", str(tiny_model_dir), "--unlearned", str(tiny_model_dir),
                         "--reference", "", "--demo-dir", str(demo_dir),
                         "--runs-dir", str(tmp_path / "runs")], env={})


def test_page_is_built_while_loading_and_handlers_say_so(config):
    ctx = make_context(config, background=True)
    # hold the store's lock: the loader thread waits on it, so "still loading" is certain here
    ctx.store._lock.acquire()
    try:
        if ctx.store.ready.is_set():  # the loader finished before the lock was taken
            pytest.skip("models loaded before the test could hold the loader")
        demo = build_ui(config, ctx)  # does not wait for the models
        assert not ctx.store.ready.is_set()
        banner, notices, timer = refresh_loading(ctx)
        assert banner["visible"] and "Loading the models" in banner["value"]
        assert timer.active
        session = ctx.new_session()
        assert session.sides["original"]  # the plan names the models before they load
        with pytest.raises(ModelsLoading, match="still loading"):
            ctx.side_names(session)
        with pytest.raises(gr.Error, match="still loading"):
            demo.whp.tokens.show(session, "Mira walked", 5, " the")
        with pytest.raises(gr.Error, match="still loading"):
            list(demo.whp.side_by_side.generate(
                session, "Mira walked", mode="completion", max_new=4, temperature=0.8,
                top_p=0.95, top_k=0, rep=1.0, seed=0, template="auto", system=""))
    finally:
        ctx.store._lock.release()
    assert ctx.store.ready.wait(120), "the models never finished loading"
    banner, notices, timer = refresh_loading(ctx)
    assert banner["visible"] is False and timer.active is False
    out = demo.whp.tokens.show(session, "Mira walked", 5, " the")
    assert demo.whp.tokens.chosen_table in out
    assert ctx.store.loaded_names() == [str(config.original)]


def test_synchronous_context_is_ready_at_once(config):
    ctx = make_context(config)
    assert ctx.store.ready.is_set() and ctx.store.loaded_names()
