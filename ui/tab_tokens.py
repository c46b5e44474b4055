"""Token probabilities: top-k next tokens of every model for a prompt; tracked tokens over steps."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from audits.errors import AuditError
from audits.plots import read_evals, topk_bars, tracked_tokens
from audits.probes import ProbabilityProbe, load_probes
from ui import gpu_tasks
from ui.public import resolve_run
from ui.state import AppContext, Session
from unlearn.models import ModelLoadError

CUSTOM = "(your own prompt)"
SCORE_KEYS = ("probability_familiarity", "probability_top1", "general_perplexity")


def probe_choices(ctx: AppContext) -> dict[str, ProbabilityProbe]:
    """Demo token-probability probes (target, then neighbour) by a readable label."""
    out: dict[str, ProbabilityProbe] = {}
    for fname in ("target_probability.jsonl", "neighbour_probability.jsonl"):
        try:
            probes = load_probes(ctx.demo_dir / "probes" / fname, ProbabilityProbe)
        except AuditError:
            continue
        for p in probes:
            out[f"{p.id}: ...{p.prompt[-60:]} ->{p.answer}"] = p
    return out


def eval_runs(runs_dir: Path, extra: list[Path] | None = None) -> list[str]:
    """Run directories that hold an `evals.jsonl`: those under `runs_dir` (newest first), then
    the `extra` folders (committed runs, e.g. `assets/models/unlearned_run`)."""
    found = (sorted(runs_dir.glob("**/evals.jsonl"), key=lambda p: p.stat().st_mtime,
                    reverse=True) if runs_dir.is_dir() else [])
    out = [str(p.parent) for p in found]
    for folder in extra or []:
        if (folder / "evals.jsonl").is_file() and str(folder) not in out:
            out.append(str(folder))
    return out


def committed_runs(ctx: AppContext) -> list[Path]:
    """Run folders that ship beside the start-up models (`<models dir>/*_run/evals.jsonl`, as
    the demo build writes `assets/models/unlearned_run`)."""
    out: list[Path] = []
    for name in ctx.startup.sides.values():
        if name and Path(name).is_dir():
            out += sorted(p.parent for p in Path(name).parent.glob("*_run/evals.jsonl"))
    return list(dict.fromkeys(out))


def run_label(path: str) -> str:
    """A run folder by its last two parts ("models/unlearned_run", "runs/whp-...")."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def split_tokens(text: str) -> list[str]:
    """Chosen continuations separated by "|", leading spaces kept (" Pip| the")."""
    return [t for t in (text or "").split("|") if t.strip()]


class TokensTab:
    """Components and handlers of the Token probabilities tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        self.choices = probe_choices(ctx)
        first = next(iter(self.choices.values()), None)
        with gr.Row():
            self.probe = gr.Dropdown([CUSTOM, *self.choices], value=next(iter(self.choices),
                                                                         CUSTOM),
                                     label="Probe (the suite's token-probability probes)",
                                     scale=2)
            self.k = gr.Slider(1, 30, value=10, step=1, label="Top-k")
        self.prompt = gr.Textbox(value=first.prompt if first else "", lines=2, label="Prompt",
                                 elem_id="tokens-prompt")
        self.chosen = gr.Textbox(value=f"{first.answer}| the" if first else " the",
                                 label="Chosen tokens / continuations (separate with |; leading "
                                       "spaces matter)")
        self.show_btn = gr.Button("Show distributions", variant="primary",
                                  elem_id="tokens-show")
        self.plot = gr.Plot(label="Top-k next tokens", elem_id="tokens-plot")
        self.chosen_table = gr.Dataframe(headers=["continuation"], interactive=False,
                                         label="Probability of the chosen continuations")
        gr.Markdown("### Familiarity over finetune steps\nFrom a finetune run's `evals.jsonl` "
                    "(probabilities of tracked tokens at each checkpoint).")
        with gr.Row():
            runs = self.run_choices()
            self.run = gr.Dropdown(runs, value=runs[0][1] if runs else None,
                                   label="Run directory (committed and new runs)",
                                   allow_custom_value=True, scale=3, elem_id="tokens-run")
            self.refresh_btn = gr.Button("Refresh list", size="sm", scale=1)
            self.steps_btn = gr.Button("Plot steps", scale=1, elem_id="tokens-steps")
        self.steps_plot = gr.Plot(label="Tracked tokens over steps", elem_id="tokens-steps-plot")
        self.steps_table = gr.Dataframe(headers=["step"], label="Scores at checkpoints",
                                        interactive=False)
        self.probe.change(self.pick_probe, [self.probe], [self.prompt, self.chosen])
        # typing a prompt of one's own: the dropdown no longer names a probe
        self.prompt.input(lambda: gr.Dropdown(value=CUSTOM), None, [self.probe],
                          api_visibility="private", show_progress="hidden")
        self.show_btn.click(self.show, [self.state, self.prompt, self.k, self.chosen],
                            [self.plot, self.chosen_table], api_name="token_probabilities")
        self.refresh_btn.click(self.refresh, None, [self.run])
        self.steps_btn.click(self.steps, [self.run], [self.steps_plot, self.steps_table],
                             api_name="steps_plot")

    def pick_probe(self, label: str):
        probe = self.choices.get(label)
        if probe is None:
            return {self.prompt: gr.Textbox(), self.chosen: gr.Textbox()}
        return {self.prompt: probe.prompt, self.chosen: f"{probe.answer}| the"}

    def show(self, session: Session, prompt: str, k: float, chosen: str):
        if not prompt or not prompt.strip():
            raise gr.Error("Type a prompt or pick a probe.")
        try:
            names = self.ctx.side_names(session)
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
        tokens = split_tokens(chosen)
        out = gpu_tasks.token_distributions(self.ctx.store_key, names, prompt, int(k), tokens)
        rows = [[repr(t), *(round(out["probs"][n][i], 5) for n in names)]
                for i, t in enumerate(tokens)]
        return {self.plot: topk_bars(out["topk"], prompt),
                self.chosen_table: gr.Dataframe(value=rows,
                                                headers=["continuation", *names])}

    def run_choices(self) -> list[tuple[str, str]]:
        return [(run_label(p), p) for p in eval_runs(self.ctx.runs_dir,
                                                     committed_runs(self.ctx))]

    def refresh(self):
        return {self.run: gr.Dropdown(choices=self.run_choices())}

    def run_folder(self, run: str) -> Path:
        """A committed run (shipped beside the models) or a run under the runs directory;
        anything else is refused (`resolve_run`)."""
        committed = {str(p.resolve()): p for p in committed_runs(self.ctx)}
        try:
            key = str(Path(run).resolve()) if len(run) < 1000 and "\x00" not in run else ""
        except (OSError, ValueError):
            key = ""
        return committed.get(key) or resolve_run(self.ctx.runs_dir, run)

    def steps(self, run: str | None):
        """The tracked-token plot and the score table (4 significant digits) of a run."""
        if not run:
            raise gr.Error("Pick a run directory (Finetune tab runs write evals.jsonl).")
        path = self.run_folder(run) / "evals.jsonl"
        if not path.is_file():
            raise gr.Error(f"No evals.jsonl in {path.parent.name}.")
        try:
            records = read_evals(path)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        if not records:
            raise gr.Error(f"{path.parent.name}/evals.jsonl is empty: the run has not "
                           "evaluated a checkpoint yet.")
        keys = [k for k in SCORE_KEYS if any(k in r for r in records)]
        rows = [[r["step"], *(_round(r.get(k)) for k in keys)] for r in records]
        return {self.steps_plot: tracked_tokens(records),
                self.steps_table: gr.Dataframe(value=rows, headers=["step", *keys])}


def _round(value):
    """Scores shown to 4 significant digits (0.0658 not 0.0658623871403376); others as they are."""
    return float(f"{value:.4g}") if isinstance(value, float) else value
