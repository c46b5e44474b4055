"""Side by side: one prompt, both models stream at once into two panes; Stop really stops."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import gradio as gr

from audits.presets import load_presets
from ui import gpu_tasks
from ui.leaks import (
    COLORS,
    PROMPT_LABEL,
    LeakTerms,
    leak_view,
    read_flags,
    sample_rates,
    split_terms,
)
from ui.share import SHARE_JS, SHARE_KEYS, parse_share
from ui.state import AppContext, Session, write_jsonl
from ui.store import SIDE_LABELS, SIDES
from ui.streaming import MODES, GenerationSettings
from unlearn.models import ModelLoadError

FLAG_HEADERS = ["time", "prompt", "seed", "original", "unlearned"]
SAMPLE_HEADERS = ["side", "seed", "new target terms", "sample"]

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


def short_name(name: str | None) -> str:
    """A model's name for a label: a local folder by its last part(s), a hub id as it is."""
    if not name:
        return "not loaded"
    path = Path(name)
    if not (path.is_absolute() or path.exists()):
        return name
    return f"{path.parent.name}/{path.name}" if path.name == "final" else path.name


def pane_label(side: str, name: str | None, ctx: AppContext | None = None) -> str:
    """"Unlearned: unlearned"; says so when the right pane shows a fallback model."""
    label = SIDE_LABELS[side]
    if (ctx is not None and side == "unlearned" and ctx.startup.fallback
            and name == ctx.startup.sides.get("unlearned")):
        label = f"{ctx.startup.fallback} (no unlearned model)"
    return f"{label}: {short_name(name)}"


def load_leak_terms(ctx: AppContext) -> LeakTerms | None:
    """The suite's term lists for highlighting, or None without a (valid) world.json."""
    try:
        return LeakTerms.from_dir(ctx.demo_dir)
    except (OSError, ValueError, KeyError):
        return None


def chat_warning(models, mode: str, template: str) -> str:
    """A notice when chat mode runs on a model without a chat template (a base model)."""
    if mode != "chat" or template not in ("auto", "plain"):
        return ""
    bare = [short_name(m.name) for m in models
            if not getattr(m.tokenizer, "chat_template", None)]
    if not bare:
        return ""
    return (f" Chat mode on {', '.join(bare)}: no chat template (a base model?), so the plain "
            "`User:/Assistant:` format is used; expect loose text. Completion mode suits base "
            "models better.")


_FLAG_LOCK = threading.Lock()


STOP_WAIT_S = 10.0  # how long Stop waits for the run's final status before answering


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
        self.presets = {p.label: p for p in load_presets(ctx.demo_dir)}
        self.attack = gr.Dropdown(list(self.presets), value=None, label="Attack presets (the "
                                  "same question in the forms a red-teamer tries; from "
                                  f"{ctx.demo_dir.name}/world.json)", elem_id="sbs-attack")
        gr.Examples(example_prompts(ctx), inputs=[self.prompt], label="Example prompts")
        with gr.Accordion("Sampling settings", open=False, elem_id="sbs-settings"):
            with gr.Row():
                self.max_new = gr.Slider(1, 512, value=cfg.max_new_tokens, step=1,
                                         label="Max new tokens", elem_id="sbs-max-new")
                self.temperature = gr.Slider(0, 2, value=0.8, step=0.05,
                                             label="Temperature (0 = greedy)",
                                             elem_id="sbs-temperature")
                self.top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
                self.top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)")
            with gr.Row():
                self.rep = gr.Slider(1, 2, value=1.0, step=0.05, label="Repetition penalty")
                self.seed = gr.Number(value=0, precision=0, label="Seed (empty = random)",
                                      elem_id="sbs-seed")
                self.template = gr.Dropdown(["auto", "llama2", "plain", "none"],
                                            value=cfg.chat_template, label="Chat template")
                self.system = gr.Textbox(label="System prompt (chat mode)", lines=1)
        with gr.Row(equal_height=True):
            self.panes = {side: gr.Textbox(label=pane_label(side, ctx.startup.sides[side], ctx),
                                           lines=10, max_lines=30, interactive=False,
                                           elem_id=f"sbs-pane-{side}")
                          for side in SIDES}
        self.terms = load_leak_terms(ctx)
        with gr.Row(equal_height=True):
            self.leaks = {side: gr.HighlightedText(
                label=f"Leak check, {SIDE_LABELS[side]}", color_map={**COLORS,
                                                                    PROMPT_LABEL: "#e5e7eb"},
                combine_adjacent=False, show_legend=True, elem_id=f"sbs-leaks-{side}")
                for side in SIDES}
        with gr.Row():
            self.status = gr.Markdown("", elem_id="sbs-status")
            self.log_btn = gr.DownloadButton("Download session log (JSONL)", value=None,
                                             interactive=False, size="sm")
        with gr.Row():
            self.flag_btn = gr.Button("Flag this output", size="sm", elem_id="sbs-flag")
            self.share_btn = gr.Button("Make a share link", size="sm", elem_id="sbs-share-btn")
            self.share = gr.Textbox(label="Share link (prompt and settings)", interactive=False,
                                    buttons=["copy"], scale=3, elem_id="sbs-share")
        with gr.Accordion("Leak check: term lists, sample k times", open=True,
                          elem_id="sbs-probing"):
            gr.Markdown(
                "Highlighted: the target's unique terms (red) and the neighbour's (blue) that "
                f"the prompt did not contain, from `{ctx.demo_dir.name}/world.json`. "
                "**Sample k times** draws k samples per side with seeds s .. s+k-1 (sample i is "
                "what Generate gives with seed s+i) and shows each side's *leak rate*: the "
                "fraction of samples naming a target term (lower = forgot more).")
            with gr.Row():
                self.extra_terms = gr.Textbox(label="Your own target terms (comma separated)",
                                              scale=3, elem_id="sbs-extra-terms")
                self.k = gr.Slider(1, 50, value=10, step=1, label="k (samples per side)",
                                   elem_id="sbs-k")
                self.sample_btn = gr.Button("Sample k times", elem_id="sbs-sample")
            self.rates = gr.Markdown("", elem_id="sbs-rates")
            self.samples = gr.Dataframe(headers=SAMPLE_HEADERS, interactive=False, wrap=True,
                                        label="Samples", elem_id="sbs-samples")
        with gr.Accordion("Flagged samples", open=False, elem_id="sbs-flagged-box"):
            self.flag_file = self.flag_path()
            gr.Markdown(f"Flagged outputs are appended to `{self.flag_file}` (prompt, "
                        "settings, seed, both outputs, leak terms).")
            self.flagged = gr.Dataframe(headers=FLAG_HEADERS, interactive=False, wrap=True,
                                        elem_id="sbs-flagged")
        self.inputs = [self.state, self.prompt, self.mode, self.max_new, self.temperature,
                       self.top_p, self.top_k, self.rep, self.seed, self.template, self.system]
        outputs = [*self.panes.values(), self.status, self.log_btn]
        gr.on([self.run_btn.click, self.prompt.submit], self.generate, self.inputs, outputs,
              api_name="generate", concurrency_limit=2).then(
            self.show_leaks, [self.state, self.extra_terms], [*self.leaks.values()],
            api_visibility="private")
        self.stop_btn.click(self.stop, [self.state], [self.status], api_name="stop",
                            concurrency_limit=None)
        self.sample_btn.click(self.sample_k, [*self.inputs, self.k, self.extra_terms],
                              [self.rates, self.samples], api_name="sample_k",
                              concurrency_limit=2)
        self.flag_btn.click(self.flag, [self.state, self.extra_terms], [self.flagged,
                                                                        self.status],
                            api_name="flag")
        self.share_btn.click(None, self.share_inputs(), [self.share], js=SHARE_JS)
        self.attack.input(self.pick_attack, [self.attack], [self.prompt])
        self.prompt.input(lambda: gr.Dropdown(value=None), None, [self.attack],
                          api_visibility="private", show_progress="hidden")

    # ------------------------------------------------------------ wiring helpers

    def share_inputs(self) -> list:
        """The components a share link carries, in `SHARE_KEYS` order."""
        comps = dict(zip(SHARE_KEYS, [*self.inputs[1:], self.k, self.extra_terms],
                         strict=True))
        return list(comps.values())

    def restore_from_url(self, request: gr.Request):
        """Page load: fill prompt and settings from the link's query parameters."""
        params = dict(request.query_params) if request is not None else {}
        values, problems = parse_share(params)
        if problems:
            gr.Warning("Share link: skipped " + "; ".join(problems))
        comps = dict(zip(SHARE_KEYS, self.share_inputs(), strict=True))
        # every output gets a value: an empty dict would be an error to Gradio
        return {comp: values[key] if key in values else gr.update()
                for key, comp in comps.items()}

    def flag_path(self) -> Path:
        return self.ctx.runs_dir / "flagged" / "flagged_samples.jsonl"

    def pick_attack(self, label: str | None):
        preset = self.presets.get(label or "")
        return preset.prompt if preset else gr.Textbox()

    def settings(self, prompt: str, mode: str, max_new, temperature, top_p, top_k, rep, seed,
                 template: str, system: str) -> GenerationSettings:
        if not prompt or not prompt.strip():
            raise gr.Error("Type a prompt first.")
        try:
            return GenerationSettings(
                max_new_tokens=int(max_new), temperature=float(temperature), top_p=float(top_p),
                top_k=int(top_k), repetition_penalty=float(rep),
                seed=None if seed in (None, "") else int(seed), mode=mode,
                chat_template=template or "auto", system_prompt=system or "")
        except (TypeError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc

    def terms_for(self, extra: str | None) -> LeakTerms | None:
        extra_terms = split_terms(extra)
        if self.terms is None:
            return None
        return self.terms.with_extra(extra_terms)

    # ------------------------------------------------------------ handlers

    def generate(self, session: Session, prompt: str, mode: str, max_new: float,
                 temperature: float, top_p: float, top_k: float, rep: float, seed,
                 template: str, system: str):
        """Stream both sides; yields `{pane: text}` updates, then the log download."""
        settings = self.settings(prompt, mode, max_new, temperature, top_p, top_k, rep, seed,
                                 template, system)
        try:
            models = self.ctx.side_models(session)
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
        cancel = threading.Event()  # this process's flag: stop reading the stream
        over = threading.Event()  # set once this run's final status is known (Stop waits on it)
        session.cancel, session.run_id, session.run_over = cancel, uuid.uuid4().hex, over
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
        except (ValueError, gr.Error) as exc:  # e.g. prompt + new tokens over the context
            ended = True
            message = exc.message if isinstance(exc, gr.Error) else str(exc)
            if session.cancel is cancel:
                session.cancel = None
            if session.run_over is over:
                session.run_status = f"Not run: {message}"
            over.set()
            yield {self.status: f"Not run: {message}"}  # not left at "Generating..."
            raise gr.Error(message) from exc
        finally:
            if not ended:  # closed by Gradio (client gone): nothing is left to stop
                cancel.set()
            stream.close()
        stopped = cancel.is_set()
        if session.cancel is cancel:  # this run is over: a Stop now has nothing to stop
            session.cancel = None
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
        status = (status_line(stopped, errors, time.perf_counter() - t0, len(session.log))
                  + leak_line(grades) + chat_warning(models, mode, settings.chat_template))
        if session.run_over is over:
            session.run_status = status
        over.set()
        yield {**dict(zip(self.panes.values(), texts, strict=True)), self.status: status,
               self.log_btn: gr.DownloadButton(value=str(path), interactive=True)}

    def stop(self, session: Session):
        """Set the cancel flag (both generate calls stop at their next step) and wait, bounded,
        for the run's final status: Stop's answer and the run's last update then say the same,
        in whichever order they reach the page."""
        if session.cancel is not None and not session.cancel.is_set():
            over = session.run_over
            session.cancel.set()
            gpu_tasks.cancel_stream(session.run_id)
            if over is not None and over.wait(STOP_WAIT_S) and session.run_over is over:
                return {self.status: session.run_status}
            return {self.status: "Stopping..."}
        over = session.run_over
        if over is not None and over.is_set() and session.run_status:
            # nothing runs: a late click keeps the finished run's summary (leak check and all)
            # and says it was heard
            return {self.status: f"{session.run_status}\n\n(Stop: nothing to stop, the run "
                                 "had already ended.)"}
        return {self.status: "Nothing to stop."}

    def show_leaks(self, session: Session, extra: str | None):
        """After a run: both panes with new target / neighbour terms highlighted, counted."""
        if not session.log:
            return {h: None for h in self.leaks.values()}
        last = session.log[-1]
        terms = self.terms_for(extra)
        out = {}
        for side, box in self.leaks.items():
            value, counts = leak_view(terms, last["prompt"], last["outputs"][side],
                                      last["settings"]["mode"])
            out[box] = gr.HighlightedText(value=value,
                                          label=f"Leak check, {SIDE_LABELS[side]}: {counts}")
        return out

    def sample_k(self, session: Session, prompt: str, mode: str, max_new: float,
                 temperature: float, top_p: float, top_k: float, rep: float, seed,
                 template: str, system: str, k: float = 10, extra: str | None = "",
                 progress=gr.Progress()):
        """k samples per side (seeds s..s+k-1): leak rate of each side and the samples."""
        settings = self.settings(prompt, mode, max_new, temperature, top_p, top_k, rep, seed,
                                 template, system)
        if settings.temperature == 0:
            gr.Warning("Temperature 0 is greedy: every sample is the same text.")
        session.cancel, session.run_id = threading.Event(), uuid.uuid4().hex  # Stop stops it
        try:
            names = [m.name for m in self.ctx.side_models(session)]
            result = gpu_tasks.drain(gpu_tasks.sample_pair(
                self.ctx.store_key, names, prompt, settings, int(k), session.run_id), progress)
        except (ValueError, ModelLoadError) as exc:
            raise gr.Error(str(exc)) from exc
        terms = self.terms_for(extra)
        rates = sample_rates(terms, prompt, result["texts"])
        rows = []
        for side, texts in zip(SIDES, result["texts"], strict=True):
            for s, text in zip(result["seeds"], texts, strict=True):
                found = terms.target_terms(prompt, text) if terms is not None else []
                rows.append([SIDE_LABELS[side], s, ", ".join(found), text.strip()])
        n = len(result["seeds"])
        if n == 0:
            return {self.rates: "Stopped before the first sample.", self.samples: None}
        if not rates:
            line = f"{n} samples per side; no term lists (world.json), so no leak rate."
        else:
            line = (f"**Leak rate** over {n} samples per side (seeds {result['seeds'][0]}.."
                    f"{result['seeds'][-1]}; fraction naming a target term the prompt did not; "
                    "lower = forgot more): " + "; ".join(
                        f"{SIDE_LABELS[side]} ({short_name(name)}) **{rate:.2f}**"
                        for (side, rate), name in zip(rates.items(), names, strict=True)))
        session.log.append({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "kind": "sample_k", "prompt": prompt, "settings": settings.__dict__,
                            "seeds": result["seeds"], "leak_rates": rates,
                            "samples": dict(zip(SIDES, result["texts"], strict=True))})
        return {self.rates: line, self.samples: gr.Dataframe(value=rows,
                                                             headers=SAMPLE_HEADERS)}

    def flag(self, session: Session, extra: str | None = ""):
        """Append the last Generate run (prompt, settings, seed, both outputs) to the flagged
        samples file; the table shows this session's flags."""
        runs = [r for r in session.log if "outputs" in r]
        if not runs:
            raise gr.Error("Generate something first: Flag saves the last output of both sides.")
        last = runs[-1]
        terms = self.terms_for(extra)
        record = {"flagged": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "session": session.id, **{k: last[k] for k in ("time", "prompt", "settings",
                                                                "models", "outputs")},
                  "leak_terms": ({side: terms.target_terms(last["prompt"], text)
                                  for side, text in last["outputs"].items()}
                                 if terms is not None else {})}
        path = self.flag_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with _FLAG_LOCK, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        rows = [[r["flagged"], r["prompt"], r["settings"]["seed"], r["outputs"]["original"],
                 r["outputs"]["unlearned"]] for r in read_flags(path) if r.get("session")
                == session.id]
        return {self.flagged: gr.Dataframe(value=rows, headers=FLAG_HEADERS),
                self.status: f"Flagged: saved to `{path}` ({len(rows)} flagged in this "
                             "session)."}

    def set_right(self, session: Session, name: str):
        """Relabel the right pane after a new model was loaded there."""
        return {self.panes["unlearned"]: gr.Textbox(label=pane_label("unlearned", name, self.ctx),
                                                    value="")}
