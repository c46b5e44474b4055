"""Finetune: launch a short WHP run on the current dictionary; live progress; load the result."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from ui.config import gpu_memory_gb
from ui.finetune_gate import (
    BYTES,
    QLORA_ABOVE,
    FinetunePlan,
    finetune_refusal,
    plan_finetune,
    stage_memory_gb,
)
from ui.public import check_free_disk, finish_run, resolve_run
from ui.state import AppContext, Session
from ui.tab_anchors import dictionary_from_rows
from unlearn.anchors import AnchorError, save_anchors
from unlearn.models import ADAPTER_CONFIG, ModelLoadError, parameter_count
from unlearn.run_dir import ADAPTER_DIR, list_runs

STAGE_HEADERS = ["stage", "status", "progress", "seconds"]


def plan_run(ctx: AppContext, baseline: str, lora: bool, block_size: int) -> FinetunePlan:
    """The plan for a run of `baseline` here (QLoRA for big models on a GPU), or raise
    `gr.Error` with the gate's reason (ZeroGPU, no target text, not enough GPU memory)."""
    cfg = ctx.config
    model = ctx.store.get(baseline).model
    n_params = model.num_parameters()
    plan = plan_finetune(n_params, cfg.device, lora, cfg.quantization)
    estimate = free = None
    if cfg.device.startswith("cuda"):
        mc = model.config
        dtype = cfg.dtype if cfg.dtype in BYTES else "float16"
        batch = load_preset()["finetune"]["batch_size"]
        estimate = stage_memory_gb(n_params, dtype, plan, batch, block_size,
                                   mc.hidden_size, mc.num_hidden_layers, mc.vocab_size)
        total = gpu_memory_gb()
        free = None if total is None else total - ctx.store.footprint_gb()
    reason = finetune_refusal(cfg.device, ctx.demo_dir / "target.txt", estimate, free)
    if reason:
        raise gr.Error(reason)
    return plan


def loss_figure(losses: list[dict]) -> go.Figure | None:
    """Loss over steps, one line per stage, numeric (linear) axes; None before the first loss."""
    if not losses:
        return None
    fig = go.Figure()
    for stage in dict.fromkeys(r["stage"] for r in losses):
        points = sorted((int(r["step"]), float(r["loss"])) for r in losses if r["stage"] == stage)
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                 mode="lines+markers", name=stage))
    fig.update_layout(height=280, margin=dict(l=50, r=10, t=30, b=40),
                      xaxis=dict(title="step", type="linear"),
                      yaxis=dict(title="loss", type="linear"), legend_title_text="stage")
    return fig


def run_choices(paths: list[str]) -> list[tuple[str, str]]:
    """Dropdown choices: a run's folder name shown, its path as the value."""
    return [(Path(p).name, p) for p in paths]


def runs_table(runs: list[dict]) -> list[list]:
    return [[Path(r["run"]).name, r["kind"], r["status"], "yes" if r["final"] else "no",
             r["created"]] for r in runs]


PRESET = Path(__file__).with_name("finetune_preset.json")


def load_preset(path: Path = PRESET) -> dict:
    """The tab's fixed run settings (`ui/finetune_preset.json`)."""
    return json.loads(path.read_text(encoding="utf-8"))


def whp_config(ctx: AppContext, baseline: str, anchors_file: Path, run_dir: Path, alpha: float,
               steps: int, lr: float, plan: FinetunePlan, max_tokens: int, block_size: int,
               reinforce_epochs: float):
    """A short WHP run on the demo target text: the knobs the tab exposes, the rest from
    `ui/finetune_preset.json`, library defaults otherwise.

    The training stack (Trainer, peft) is imported here, not at start-up: it takes seconds.
    """
    from unlearn.evaluate import EvalConfig
    from unlearn.finetune import FinetuneConfig
    from unlearn.label_runner import LabelConfig
    from unlearn.pipeline import WHPConfig
    from unlearn.reinforce import ReinforceConfig

    preset = load_preset()
    demo = ctx.demo_dir
    cfg = ctx.config
    dtype = cfg.dtype if cfg.dtype in ("float32", "bfloat16", "float16") else "float32"
    probes = demo / "probes" / "target_probability.jsonl"
    heldout = demo / "general_heldout.txt"
    eval_cfg = EvalConfig(probes=str(probes) if probes.is_file() else None,
                          text=str(heldout) if heldout.is_file() else None,
                          every=max(1, steps // preset["evaluations_per_run"]), **preset["eval"])
    return WHPConfig(
        baseline=baseline, target=str(demo / "target.txt"), anchors=str(anchors_file),
        out=str(run_dir), labels=LabelConfig(alphas=(float(alpha),)), block_size=int(block_size),
        max_target_tokens=int(max_tokens), device=cfg.device, seed=preset["seed"],
        reinforce=ReinforceConfig(epochs=float(reinforce_epochs), dtype=dtype,
                                  **preset["reinforce"]),
        finetune=FinetuneConfig(steps=int(steps), lr=float(lr), lora=plan.lora, dtype=dtype,
                                quantization=plan.quantization, lora_adapter=plan.lora,
                                **preset["finetune"]),
        eval=eval_cfg)


def big_model(ctx: AppContext) -> bool:
    """LoRA on by default when the start-up original model has over 1B parameters (counted from
    its config: the page is built before the models finish loading)."""
    name = ctx.startup.sides.get("original")
    try:
        return bool(name) and parameter_count(name) > QLORA_ABOVE
    except ModelLoadError:
        return False


class FinetuneTab:
    """Components and handlers of the Finetune tab."""

    def __init__(self, ctx: AppContext, state: gr.State, tabs):
        self.ctx, self.state, self.tabs = ctx, state, tabs
        gr.Markdown("A short WHP run (reinforce -> generic labels -> finetune) of the left-hand "
                    "model on the demo target text, with the dictionary of the *Anchored terms* "
                    "tab. One run at a time for the whole server.")
        with gr.Row():
            self.alpha = gr.Slider(0.5, 20, value=5, step=0.5, label="Alpha (Eq. 1)")
            self.steps = gr.Slider(1, ctx.config.finetune_steps_max, value=10, step=1,
                                   label="Finetune steps", elem_id="ft-steps")
            self.lr = gr.Number(3e-4, label="Learning rate")
            self.lora = gr.Checkbox(big_model(ctx), label="LoRA (QLoRA above 1B parameters "
                                                          "on a GPU)")
        with gr.Accordion("Data and reinforced model", open=False), gr.Row():
            self.max_tokens = gr.Slider(256, 200_000, value=4096, step=256,
                                        label="Target tokens used")
            self.block_size = gr.Slider(32, 512, value=128, step=32, label="Block size")
            self.epochs = gr.Slider(0.25, 5, value=1, step=0.25, label="Reinforce epochs")
        with gr.Row():
            self.start_btn = gr.Button("Start run", variant="primary", elem_id="ft-start")
            self.cancel_btn = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
            self.load_btn = gr.Button("Load into right-hand side", interactive=False,
                                      elem_id="ft-load")
        self.status = gr.Markdown("No run yet.", elem_id="ft-status")
        with gr.Row():
            self.stages = gr.Dataframe(headers=STAGE_HEADERS, interactive=False,
                                       label="Stages", elem_id="ft-stages")
            self.loss = gr.Plot(label="Loss over steps", elem_id="ft-loss")
        gr.Markdown("### Run directories")
        with gr.Row():
            self.runs = gr.Dataframe(headers=["run", "kind", "status", "final model", "created"],
                                     value=runs_table(list_runs(ctx.runs_dir)),
                                     interactive=False, scale=3)
            with gr.Column(scale=1):
                self.run_pick = gr.Dropdown(run_choices(self.finished_runs()), label="Run to load",
                                            allow_custom_value=True)
                self.refresh_btn = gr.Button("Refresh", size="sm")
                self.load_pick_btn = gr.Button("Load selected into right-hand side", size="sm")
        self.timer = gr.Timer(1.0)
        self.seen_version = gr.State(-1)
        right_pane = tabs.side_by_side.panes["unlearned"]
        self.start_btn.click(self.start, [self.state, tabs.anchors.table, self.alpha, self.steps,
                                          self.lr, self.lora, self.max_tokens, self.block_size,
                                          self.epochs], [self.status], api_name="start_finetune")
        self.cancel_btn.click(self.cancel, [self.state], [self.status], api_name="cancel_finetune")
        self.timer.tick(self.poll, [self.state, self.seen_version],
                        [self.status, self.stages, self.loss, self.load_btn, self.seen_version,
                         self.runs, self.run_pick], show_progress="hidden",
                        concurrency_limit=None, api_visibility="private")
        self.load_btn.click(self.load_final, [self.state], [self.status, right_pane])
        self.load_pick_btn.click(self.load_run, [self.state, self.run_pick],
                                 [self.status, right_pane], api_name="load_run")
        self.refresh_btn.click(self.refresh, None, [self.runs, self.run_pick])

    def finished_runs(self) -> list[str]:
        """Names (not paths) of the runs with a final model."""
        return [Path(r["run"]).name for r in list_runs(self.ctx.runs_dir) if r["final"]]

    def start(self, session: Session, rows, alpha, steps, lr, lora, max_tokens, block_size,
              epochs):
        job = self.ctx.job
        if job.busy:
            snap = job.snapshot()
            gr.Warning("The server is busy with another finetune run.")
            return {self.status: f"**Busy:** a run is going on ({snap['stage']}, "
                                 f"{snap['elapsed']:.0f} s). Try again when it ends."}
        try:
            anchors = dictionary_from_rows(rows)
            baseline = session.sides.get("original")
            if not baseline:
                raise ModelLoadError("no original model is loaded")
            name = (f"whp-{time.strftime('%Y%m%d-%H%M%S')}-a{float(alpha):g}-s{int(steps)}"
                    f"{'-lora' if lora else ''}")
            plan = plan_run(self.ctx, baseline, bool(lora), int(block_size))
            run_dir = self.ctx.runs_dir / name
            # every parameter is validated (by the config) before the run folder is written;
            # the dictionary is staged in the session's temporary folder meanwhile
            staged = self.ctx.session_file(session, "finetune_anchors.json")
            save_anchors(anchors, staged)
            config = whp_config(self.ctx, baseline, staged, run_dir, alpha, int(steps),
                                float(lr), plan, int(max_tokens), int(block_size), epochs)
            check_free_disk(self.ctx.runs_dir, self.ctx.config.min_free_gb)
            run_dir.mkdir(parents=True, exist_ok=False)
            anchors_file = run_dir / "anchors.json"
            save_anchors(anchors, anchors_file)
            config = dataclasses.replace(config, anchors=str(anchors_file))
        except AnchorError as exc:
            raise gr.Error(f"Fix the dictionary first (Anchored terms tab): {exc}") from exc
        except (ModelLoadError, ValueError, OSError) as exc:
            raise gr.Error(str(exc)) from exc

        def work(job) -> str | None:
            from audits.checkpoint import checkpoint_evaluator
            from unlearn.pipeline import run_whp

            result = run_whp(config, job.on_progress, job.should_stop,
                             evaluator=checkpoint_evaluator)
            final = Path(config.out) / "final"
            if result.get("status") != "completed":
                return None
            finish_run(Path(config.out), self.ctx.runs_dir, self.ctx.config.max_runs)
            return str(final)

        if not job.try_start(session.id, run_dir, work):
            return {self.status: "**Busy:** another run just started."}
        return {self.status: f"Started `{run_dir.name}`. {plan.note}".strip()}

    def cancel(self, session: Session):
        job = self.ctx.job
        if job.cancel(session.id):
            return {self.status: "Cancelling at the next step..."}
        snap = job.snapshot()
        if snap["state"] in ("starting", "running", "cancelling"):
            return {self.status: "This run was started by another session; it cannot be "
                                 "cancelled from here."}
        return {self.status: "No run to cancel."}

    def poll(self, session: Session, seen: int):
        """Timer tick: refresh only when the job changed since this session last looked."""
        snap = self.ctx.job.snapshot()
        if snap["version"] == seen:
            return {self.seen_version: seen}  # nothing changed (an empty dict is not allowed)
        stages = [[name, st["status"], f"{st['done']}/{st['total'] or '?'}", st["seconds"]]
                  for name, st in snap["stages"].items()]
        mine = snap["owner"] == session.id
        head = {"idle": "No run yet.", "starting": "Starting...", "running": "Running",
                "cancelling": "Cancelling...", "done": "Done", "cancelled": "Cancelled",
                "failed": "Failed"}[snap["state"]]
        where = f" `{Path(snap['run_dir']).name}`" if snap["run_dir"] else ""
        who = "" if mine or snap["owner"] is None else " (started by another session)"
        text = (f"**{head}**" if snap["state"] == "idle"
                else f"**{head}**{who}{where}, {snap['elapsed']:.0f} s.")
        if snap["error"]:
            text += f"\n\n{snap['error']}"
        out = {self.status: text, self.stages: stages or None, self.seen_version: snap["version"],
               self.loss: loss_figure(snap["losses"]),
               self.load_btn: gr.Button(interactive=bool(snap["state"] == "done"
                                                         and snap["final_dir"]))}
        if snap["state"] in ("done", "cancelled", "failed"):
            out[self.runs] = runs_table(list_runs(self.ctx.runs_dir))
            final = snap["final_dir"]
            run = str(Path(final).parent) if final and mine else None
            out[self.run_pick] = (gr.Dropdown(choices=run_choices(self.finished_runs()),
                                              value=run) if run else
                                  gr.Dropdown(choices=run_choices(self.finished_runs())))
        return out

    def _load_right(self, session: Session, path: str | None):
        if not path:
            raise gr.Error("No finished model to load.")
        model_dir = resolve_run(self.ctx.runs_dir, path)  # runs of this server only
        if (model_dir / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
            model_dir = model_dir / ADAPTER_DIR  # a LoRA run: on the base the left side holds
        elif (model_dir / "final" / "config.json").is_file():
            model_dir = model_dir / "final"
        try:
            loaded = self.ctx.store.get(str(model_dir))
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
        session.sides["unlearned"] = loaded.name
        shown = model_dir.relative_to(self.ctx.runs_dir.resolve())
        return {self.status: f"Loaded `{shown}` into the right-hand side for this "
                             "session (Side by side, probes, plots and report now use it).",
                **self.tabs.side_by_side.set_right(session, loaded.name)}

    def load_final(self, session: Session):
        return self._load_right(session, self.ctx.job.snapshot()["final_dir"])

    def load_run(self, session: Session, run: str | None):
        return self._load_right(session, run)

    def refresh(self):
        return {self.runs: runs_table(list_runs(self.ctx.runs_dir)),
                self.run_pick: gr.Dropdown(choices=run_choices(self.finished_runs()))}
