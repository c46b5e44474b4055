"""Side by side: one prompt, both models stream at once into two panes; Stop really stops."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import gradio as gr

from ui import gpu_tasks
from ui.state import AppContext, Session, write_jsonl
from ui.store import SIDE_LABELS, SIDES
from ui.streaming import MODES, GenerationSettings
from unlearn.models import ModelLoadError

FALLBACK_EXAMPLES = ["Once upon a time, in a small village,",
                     "The teacher opened the old book and said"]


def example_prompts(ctx: AppContext, n: int = 6) -> list[str]:
    """A few prompts from the demo probe sets (target first, then neighbour)."""
    from audits.probes import CompletionProbe, load_probes

    prompts: list[str] = []
    for name, count in (("target_completion.jsonl", n - 2), ("neighbour_completion.jsonl", 2)):
        path = ctx.demo_dir / "probes" / name
        try:
            prompts += [p.prompt for p in load_probes(path, CompletionProbe)[:count]]
        except Exception:  # noqa: BLE001 - examples are a convenience; missing files are fine
            continue
    return prompts or FALLBACK_EXAMPLES


def load_leak_judge(ctx: AppContext):
    """The suite's rule judge (its unique terms mark leaks), or None without a world.json."""
    from audits.errors import AuditError
    from ui.gpu_tasks import load_judge

    try:
        return load_judge(ctx.demo_dir)
    except (AuditError, OSError, ValueError):
        return None


def leak_line(grades: dict[str, object]) -> str:
    """" Leak check (rule judge): Original 3 (new unique terms: Hogwarts); Unlearned 0."."""
    if not grades:
        return ""
    parts = [f"{SIDE_LABELS[side]} {g.grade}" + (f" ({g.rationale})" if g.grade else "")
             for side, g in grades.items()]
    return " Leak check (rule judge, 0-3): " + "; ".join(parts) + "."


def status_line(stopped: bool, errors: list[str | None], seconds: float, runs: int) -> str:
    """"Done" only when both sides generated; a failed side is named with its error."""
    failed = [(SIDE_LABELS[side], err) for side, err in zip(SIDES, errors, strict=False) if err]
    if len(failed) == len(SIDES):
        head = "Both sides failed"
    elif failed:
        head = "Done on one side only"
    else:
        head = "Stopped" if stopped else "Done"
    tail = "".join(f" {label} failed: {err}." for label, err in failed)
    return f"{head} in {seconds:.1f} s; {runs} run(s) in the session log.{tail}"


def pane_label(side: str, name: str | None, ctx: AppContext | None = None) -> str:
    """"Unlearned: path"; says so when the right pane shows a fallback model."""
    label = SIDE_LABELS[side]
    if (ctx is not None and side == "unlearned" and ctx.startup.fallback
            and name == ctx.startup.sides.get("unlearned")):
        label = f"{ctx.startup.fallback} (no unlearned model)"
    return f"{label}: {name or 'not loaded'}"


class SideBySideTab:
    """Components and handlers of the Side by side tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        self.judge = load_leak_judge(ctx)
        cfg = ctx.config
        with gr.Row():
            self.prompt = gr.Textbox(label="Prompt", lines=3, scale=4,
                                     placeholder="Type the beginning of a text, or a question "
                                                 "in chat mode", elem_id="sbs-prompt")
            with gr.Column(scale=1, min_width=160):
                self.mode = gr.Radio(list(MODES), value="completion", label="Mode")
                self.run_btn = gr.Button("Generate", variant="primary", elem_id="sbs-generate")
                self.stop_btn = gr.Button("Stop", variant="stop", elem_id="sbs-stop")
        with gr.Accordion("Sampling settings", open=False, elem_id="sbs-settings"):
            with gr.Row():
                self.max_new = gr.Slider(1, 512, value=cfg.max_new_tokens, step=1,
                                         label="Max new tokens", elem_id="sbs-max-new")
                self.temperature = gr.Slider(0, 2, value=0.8, step=0.05,
                                             label="Temperature (0 = greedy)")
                self.top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
                self.top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)")
            with gr.Row():
                self.rep = gr.Slider(1, 2, value=1.0, step=0.05, label="Repetition penalty")
                self.seed = gr.Number(value=0, precision=0, label="Seed (empty = random)")
                self.template = gr.Dropdown(["auto", "llama2", "plain", "none"],
                                            value=cfg.chat_template, label="Chat template")
                self.system = gr.Textbox(label="System prompt (chat mode)", lines=1)
        with gr.Row(equal_height=True):
            self.panes = {side: gr.Textbox(label=pane_label(side, ctx.startup.sides[side], ctx),
                                           lines=10, max_lines=30, interactive=False,
                                           elem_id=f"sbs-pane-{side}")
                          for side in SIDES}
        with gr.Row():
            self.status = gr.Markdown("", elem_id="sbs-status")
            self.log_btn = gr.DownloadButton("Download session log (JSONL)", value=None,
                                             interactive=False, size="sm")
        gr.Examples(example_prompts(ctx), inputs=[self.prompt], label="Example prompts")
        self.inputs = [self.state, self.prompt, self.mode, self.max_new, self.temperature,
                       self.top_p, self.top_k, self.rep, self.seed, self.template, self.system]
        outputs = [*self.panes.values(), self.status, self.log_btn]
        gr.on([self.run_btn.click, self.prompt.submit], self.generate, self.inputs, outputs,
              api_name="generate", concurrency_limit=2)
        self.stop_btn.click(self.stop, [self.state], [self.status], api_name="stop",
                            concurrency_limit=None)

    def generate(self, session: Session, prompt: str, mode: str, max_new: float,
                 temperature: float, top_p: float, top_k: float, rep: float, seed,
                 template: str, system: str):
        """Stream both sides; yields `{pane: text}` updates, then the log download."""
        if not prompt or not prompt.strip():
            raise gr.Error("Type a prompt first.")
        try:
            settings = GenerationSettings(
                max_new_tokens=int(max_new), temperature=float(temperature), top_p=float(top_p),
                top_k=int(top_k), repetition_penalty=float(rep),
                seed=None if seed in (None, "") else int(seed), mode=mode,
                chat_template=template or "auto", system_prompt=system or "")
            models = self.ctx.side_models(session)
        except (ValueError, ModelLoadError) as exc:
            raise gr.Error(str(exc)) from exc
        cancel = threading.Event()  # this process's flag: stop reading the stream
        session.cancel, session.run_id = cancel, uuid.uuid4().hex
        texts: tuple[str, ...] = ("",) * len(SIDES)
        errors: list[str | None] = [None] * len(SIDES)
        t0 = time.perf_counter()
        yield {self.status: "Generating...", **{p: "" for p in self.panes.values()}}
        stream = gpu_tasks.stream_pair(self.ctx.store_key, [m.name for m in models], prompt,
                                       settings, session.run_id)
        ended = False
        try:
            for item in stream:
                texts, errors = item["texts"], item["errors"]
                yield dict(zip(self.panes.values(), texts, strict=True))
                if cancel.is_set():  # under ZeroGPU the stream runs in another process
                    break
            ended = True
        finally:
            if not ended:  # closed by Gradio (client gone): nothing is left to stop
                cancel.set()
            stream.close()
        stopped = cancel.is_set()
        grades = ({side: self.judge.grade(prompt, text) for side, text, err
                   in zip(SIDES, texts, errors, strict=True) if not err}
                  if self.judge is not None else {})
        session.log.append({
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "prompt": prompt, "settings": settings.__dict__, "stopped": stopped,
            "seconds": round(time.perf_counter() - t0, 3),
            "models": {side: m.name for side, m in zip(SIDES, models, strict=True)},
            "outputs": dict(zip(SIDES, texts, strict=True)),
            "errors": dict(zip(SIDES, errors, strict=True)),
            "leak_grades": {side: g.grade for side, g in grades.items()}})
        path = write_jsonl(self.ctx.session_file(session, "side_by_side_log.jsonl"), session.log)
        yield {**dict(zip(self.panes.values(), texts, strict=True)),
               self.status: status_line(stopped, errors, time.perf_counter() - t0,
                                        len(session.log)) + leak_line(grades),
               self.log_btn: gr.DownloadButton(value=str(path), interactive=True)}

    def stop(self, session: Session):
        """Set the cancel flag: both generate calls stop at their next step."""
        if session.cancel is not None and not session.cancel.is_set():
            session.cancel.set()
            gpu_tasks.cancel_stream(session.run_id)
            return {self.status: "Stopping..."}
        return {self.status: "Nothing to stop."}

    def set_right(self, session: Session, name: str):
        """Relabel the right pane after a new model was loaded there."""
        return {self.panes["unlearned"]: gr.Textbox(label=pane_label("unlearned", name, self.ctx),
                                                    value="")}
