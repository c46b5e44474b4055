"""`build_ui(config) -> gr.Blocks`: the whole app, one tab module per tab."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ui import guard
from ui.config import ROOT, AppConfig
from ui.gpu import on_zerogpu
from ui.limits import MAX_UPLOAD_MB
from ui.operator_panel import OperatorPanel
from ui.public import Policy
from ui.state import AppContext
from ui.store import READY_LOG, ModelStore, start_in_background, start_models

log = logging.getLogger("app")
TITLE = "Who's Harry Potter: unlearning demo and audits"
CSS = """
#notices {border-left: 4px solid #d97706; padding-left: .75em}
#loading {border-left: 4px solid #2563eb; padding-left: .75em}
.pane textarea {font-family: ui-monospace, monospace}
/* leak check: Gradio's HighlightedText breaks words anywhere ("the pit|ch"); wrap at spaces */
#sbs-leaks-original .textfield, #sbs-leaks-unlearned .textfield {word-break: normal !important;
  overflow-wrap: anywhere}
"""
THEME = "soft"
TAB_NAMES = ("Side by side", "Completion probes", "Token probabilities", "Anchored terms",
             "Finetune", "Report", "In-context unlearning", "Adversarial")


def make_context(config: AppConfig, background: bool = False) -> AppContext:
    """Load the start-up models into a fresh store; failures become notices.

    `background`: the page is built from the plan and served at once while the models load in
    a thread (`ui.store.start_in_background`); handlers say "the models are still loading" until
    then. Not on ZeroGPU, whose GPU calls need the models loaded before the first of them.
    """
    store = ModelStore(**config.load_kwargs())
    if not background or on_zerogpu():
        startup = start_models(config, store)
        for notice in startup.notices:
            log.warning("%s", notice)
        log.info("%s", READY_LOG)
        return AppContext(config=config, store=store, startup=startup)
    ctx = AppContext(config=config, store=store, startup=start_models(config, None))

    def on_ready(startup) -> None:
        for notice in startup.notices:
            log.warning("%s", notice)
        ctx.startup = startup

    start_in_background(config, store, on_ready)
    return ctx


def notices_markdown(ctx: AppContext) -> str:
    return "\n".join(f"- {n}" for n in ctx.startup.notices)


def loading_markdown(ctx: AppContext) -> str:
    if ctx.store.ready.is_set():
        return ""
    return (f"**Loading the models** ({ctx.store.loading_seconds():.0f} s so far): the buttons "
            "that run a model answer \"the models are still loading\" until they are ready.")


def refresh_loading(ctx: AppContext):
    """Timer tick while the models load: the banner, the notices, and the timer itself off
    once they are ready."""
    ready = ctx.store.ready.is_set()
    return (gr.update(value=loading_markdown(ctx), visible=not ready),
            gr.update(value=notices_markdown(ctx), visible=bool(ctx.startup.notices)),
            gr.Timer(active=not ready))


def build_ui(config: AppConfig, ctx: AppContext | None = None) -> gr.Blocks:
    """The app's Blocks. `demo.whp` holds the context and every tab object (for tests)."""
    from ui.jobs import FinetuneJob
    from ui.tab_adversarial import AdversarialTab
    from ui.tab_anchors import AnchorsTab
    from ui.tab_erase import EraseTab
    from ui.tab_finetune import FinetuneTab
    from ui.tab_probes import ProbesTab
    from ui.tab_report import ReportTab
    from ui.tab_side_by_side import SideBySideTab
    from ui.tab_tokens import TokensTab

    ctx = ctx or make_context(config)
    if ctx.job is None:
        ctx.job = FinetuneJob(ctx.runs_dir)
    policy = Policy.from_config(ctx.config)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"## {TITLE}\nOriginal model on the left, unlearned model on the right. "
                    "Every tab works on the models loaded here.")
        loading = not ctx.store.ready.is_set()
        banner = gr.Markdown(loading_markdown(ctx), elem_id="loading", visible=loading)
        notices = gr.Markdown(notices_markdown(ctx), elem_id="notices",
                              visible=bool(ctx.startup.notices))
        timer = gr.Timer(1.0, active=loading)
        timer.tick(lambda: refresh_loading(ctx), None, [banner, notices, timer],
                   api_visibility="private", show_progress="hidden")
        state = gr.State(lambda: ctx.new_session())  # a function: deep-copied as itself
        tabs = SimpleNamespace(ctx=ctx, state=state, policy=policy)
        operator = OperatorPanel(state, policy)
        with gr.Tabs():
            with gr.Tab(TAB_NAMES[0], id="side-by-side"):
                tabs.side_by_side = SideBySideTab(ctx, state)
            with gr.Tab(TAB_NAMES[1], id="probes"):
                tabs.probes = ProbesTab(ctx, state)
            with gr.Tab(TAB_NAMES[2], id="tokens"):
                tabs.tokens = TokensTab(ctx, state)
            with gr.Tab(TAB_NAMES[3], id="anchors"):
                tabs.anchors = AnchorsTab(ctx, state)
            with gr.Tab(TAB_NAMES[4], id="finetune"):
                tabs.finetune = FinetuneTab(ctx, state, tabs)
            with gr.Tab(TAB_NAMES[5], id="report"):
                tabs.report = ReportTab(ctx, state)
            with gr.Tab(TAB_NAMES[6], id="erase"):
                tabs.erase = EraseTab(ctx, state)
            with gr.Tab(TAB_NAMES[7], id="adversarial"):
                tabs.adversarial = AdversarialTab(ctx, state)
        # a share link (URL query parameters) restores Side by side's prompt and settings
        demo.load(tabs.side_by_side.restore_from_url, None, tabs.side_by_side.share_inputs(),
                  api_visibility="private", show_progress="hidden")
        operator.wire(demo, tabs)
    tabs.operator = operator
    # one error boundary and input check for every handler (ui/guard.py)
    guard.install(demo, guard.server_roots(ctx.runs_dir, ctx.work_dir, ROOT, tempfile.gettempdir(),
                                           Path.home()), policy.admit)
    demo.whp = tabs
    return demo


def launch(demo: gr.Blocks, config: AppConfig, **kwargs) -> None:
    """Queue (bounded: beyond `queue_size` waiting requests the answer is "busy") and launch;
    never opens a share link; error toasts show only the guard's messages."""
    demo.queue(default_concurrency_limit=1, max_size=config.queue_size or None)
    ctx = demo.whp.ctx
    ctx.runs_dir.mkdir(parents=True, exist_ok=True)
    # quiet: Gradio's own banner also advertises share links, which this app never opens
    host = config.host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = config.port or os.environ.get("GRADIO_SERVER_PORT", "7860")
    print(f"* Running on http://{host}:{port}", flush=True)
    demo.launch(server_name=config.host, server_port=config.port, share=False, quiet=True,
                theme=THEME, css=CSS, show_error=False, max_file_size=f"{MAX_UPLOAD_MB}mb",
                allowed_paths=[str(ctx.work_dir), str(ctx.runs_dir.resolve())], **kwargs)
