"""Adversarial: run the attacks of `audits.adversarial` on the loaded models, with progress;
clean-vs-attacked table, relearning / in-context curves, many-way bars, logit-lens plots."""

from __future__ import annotations

import json
import time

import gradio as gr

from audits.adversarial.icl import ICLConfig
from audits.adversarial.relearn import RelearnConfig
from audits.adversarial.runner import ATTACKS, AdversarialConfig
from audits.adversarial.suffix import SuffixConfig
from audits.errors import AuditError
from audits.plots_adversarial import (
    icl_curves,
    kway_bars,
    lens_heatmap,
    lens_lines,
    relearn_curves,
    template_bars,
)
from audits.probes import load_suite
from ui import gpu_tasks
from ui.state import AppContext, Session
from unlearn.models import ModelLoadError

# the default is the quick ones (seconds on the demo, and already telling: the unlearned model
# picks the right name among 5 three times as often as the reference); relearning is the
# strongest test and takes minutes on CPU, so a visitor ticks it on purpose
DEFAULT_ATTACKS = ("kway", "lens", "framing", "prompting")


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """'0, 10, 25' -> (0, 10, 25); a clear error otherwise."""
    try:
        items = tuple(int(x) for x in str(text).replace(" ", "").split(",") if x)
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not items or min(items) < 0:
        raise ValueError(f"{what}: expected non-negative integers, got {text!r}")
    return items


def attacked_table(result: dict, clean: dict[str, float]) -> tuple[list[str], list[list]]:
    """Rows = clean probability then every attacked score; columns = models."""
    names = list(result["scores"])
    rows = [["probability_familiarity (clean)", *(round(clean[n], 4) for n in names)]]
    for key in result["keys"]:
        values = [result["scores"][n].get(key) for n in names]
        if any(v is not None for v in values):
            rows.append([key, *(None if v is None else round(float(v), 4) for v in values)])
    return ["score", *names], rows


class AdversarialTab:
    """Components and handlers of the Adversarial tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        has_ref = bool(ctx.startup.reference)
        gr.Markdown("Try to get the forgotten knowledge back. Every attack runs on every loaded "
                    "model; compare the unlearned model with the reference (never trained on "
                    "the target). Ticked by default: the attacks that take seconds. **relearn** "
                    "(finetune on other facts of the target, then ask the held-out ones) is the "
                    "strongest test; it and the string search take minutes on CPU.")
        with gr.Row():
            self.attacks = gr.CheckboxGroup(list(ATTACKS), value=list(DEFAULT_ATTACKS),
                                            label="Attacks")
            with gr.Column():
                self.relearn_steps = gr.Textbox("0,10,25", label="Relearning step counts")
                self.method = gr.Radio(["full", "lora"], value="full", label="Relearning")
                self.shots = gr.Textbox("0,1,3,8", label="In-context sentences (N)")
                self.suffix_steps = gr.Slider(1, 50, value=10, step=1,
                                              label="String-search steps")
                self.include_ref = gr.Checkbox(has_ref, interactive=has_ref,
                                               label="Include the reference model")
        with gr.Row():
            self.run_btn = gr.Button("Run attacks", variant="primary", elem_id="adv-run")
            self.stop_btn = gr.Button("Stop", variant="stop")
        self.message = gr.Markdown("", elem_id="adv-message")
        self.json_btn = gr.DownloadButton("Download adversarial.json", interactive=False,
                                          size="sm")
        self.table = gr.Dataframe(label="Clean vs attacked", interactive=False,
                                  headers=["score", "original", "unlearned"],
                                  elem_id="adv-table")
        with gr.Row():
            self.relearn_plot = gr.Plot(label="Finetune relearning")
            self.icl_plot = gr.Plot(label="In-context relearning")
        with gr.Row():
            self.kway_plot = gr.Plot(label="Many-way choice")
            self.framing_plot = gr.Plot(label="Framing templates")
        with gr.Row():
            self.lens_plot = gr.Plot(label="Logit lens")
            self.heat_plot = gr.Plot(label="Logit lens heat map (unlearned)")
        event = self.run_btn.click(
            self.run, [self.state, self.attacks, self.relearn_steps, self.method, self.shots,
                       self.suffix_steps, self.include_ref],
            [self.message, self.table, self.relearn_plot, self.icl_plot, self.kway_plot,
             self.framing_plot, self.lens_plot, self.heat_plot, self.json_btn],
            api_name="run_adversarial")
        self.stop_btn.click(None, None, None, cancels=[event])

    def run(self, session: Session, attacks: list[str], relearn_steps: str, method: str,
            shots: str, suffix_steps: float, include_ref: bool, progress=gr.Progress()):
        if not attacks:
            raise gr.Error("Pick at least one attack.")
        try:
            config = AdversarialConfig(
                attacks=tuple(attacks),
                relearn=RelearnConfig(steps=parse_ints(relearn_steps, "relearning steps"),
                                      method=method),
                icl=ICLConfig(shots=parse_ints(shots, "in-context N")),
                suffix=SuffixConfig(steps=int(suffix_steps)),
                cache_dir=str(self.ctx.runs_dir / "relearn-cache"))
            load_suite(self.ctx.demo_dir)  # fail here, with a message, not in the GPU call
            names = self.ctx.side_names(session, with_reference=bool(include_ref))
        except (AuditError, ModelLoadError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        t0 = time.perf_counter()
        try:
            out = gpu_tasks.drain(gpu_tasks.adversarial_attacks(
                self.ctx.store_key, names, str(self.ctx.demo_dir), config), progress)
        except AuditError as exc:
            raise gr.Error(str(exc)) from exc
        result, clean = out["result"], out["clean"]
        out_dir = self.ctx.runs_dir / "adversarial" / \
            f"{time.strftime('%Y%m%d-%H%M%S')}-{session.id}"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "adversarial.json"
        path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        headers, rows = attacked_table(result, clean)
        att = result["attacks"]
        lens = att.get("lens") or {}
        heat_name = "unlearned" if "unlearned" in lens else next(iter(lens), None)
        skipped = f" Skipped: {'; '.join(result['skipped'])}." if result["skipped"] else ""
        return {
            self.message: f"Attacks on {', '.join(names)} in {time.perf_counter() - t0:.1f} s, "
                          f"written to `{path}`." + skipped,
            self.table: gr.Dataframe(value=rows, headers=headers),
            self.relearn_plot: relearn_curves(att["relearn"]) if att.get("relearn") else None,
            self.icl_plot: icl_curves(att["icl"]) if att.get("icl") else None,
            self.kway_plot: kway_bars(att["kway"]) if att.get("kway") else None,
            self.framing_plot: template_bars(att["framing"], "Framing templates")
            if att.get("framing") else None,
            self.lens_plot: lens_lines(lens) if lens else None,
            self.heat_plot: lens_heatmap(heat_name, lens[heat_name]) if heat_name else None,
            self.json_btn: gr.DownloadButton(value=str(path), interactive=True)}
