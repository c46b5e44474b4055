"""Report: run the audit suite on the loaded models; scores table, plots, JSON/HTML downloads."""

from __future__ import annotations

import time

import gradio as gr

from audits.errors import AuditError
from audits.plots import scores_summary, topk_bars
from audits.probes import load_suite
from audits.report import DEFAULT_MEASURES, HEADLINE, AuditConfig, write_report
from audits.score_info import describe, rounded
from ui import gpu_tasks
from ui.state import AppContext, Session
from ui.tab_side_by_side import short_name
from unlearn.models import ModelLoadError

SCORE_HEADERS = ["score", "range", "reading"]


def score_table(report, models: dict[str, str] | None = None) -> tuple[list[str], list[list]]:
    """Rows = headline scores (plus forget quality when present) with a readable name, range
    and direction; one column per model, named "role (model)"; then the explanation and the
    report.json key."""
    names = list(report.models)
    models = models or {}
    keys = list(HEADLINE) + sorted({k for r in report.models.values() for k in r.scores
                                    if k not in HEADLINE})
    rows = []
    for key in keys:
        values = [report.models[n].scores.get(key) for n in names]
        if all(v is None for v in values):
            continue
        info = describe(key)
        rows.append([info.name, info.range, info.direction,
                     *(rounded(key, v) for v in values), info.explain, key])
    columns = [f"{n} ({short_name(models[n])})" if models.get(n) else n for n in names]
    return [*SCORE_HEADERS, *columns, "what it measures", "key"], rows


class ReportTab:
    """Components and handlers of the Report tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        has_ref = bool(ctx.startup.reference)
        with gr.Row():
            self.measures = gr.CheckboxGroup(list(DEFAULT_MEASURES), value=list(DEFAULT_MEASURES),
                                             label="Measures")
            with gr.Column():
                self.limit = gr.Slider(1, 300, value=20, step=1,
                                       label="Items per probe set (smaller = faster)",
                                       info="1 to 300; every set is cut to its first N items",
                                       elem_id="report-limit")
                self.include_ref = gr.Checkbox(has_ref, interactive=has_ref,
                                               label="Include the reference model "
                                                     "(forget quality)")
        self.run_btn = gr.Button("Build report", variant="primary", elem_id="report-run")
        self.message = gr.Markdown("", elem_id="report-message")
        with gr.Row():
            self.json_btn = gr.DownloadButton("Download report.json", interactive=False,
                                              size="sm")
            self.html_btn = gr.DownloadButton("Download report.html", interactive=False,
                                              size="sm")
        self.table = gr.Dataframe(headers=SCORE_HEADERS, label="Scores (blank = not measured "
                                  "for that model)", interactive=False, wrap=True,
                                  elem_id="report-table")
        self.summary_plot = gr.Plot(label="Scores per model", elem_id="report-plot")
        self.topk_plot = gr.Plot(label="Top-k next tokens on a target probe")
        self.run_btn.click(self.run, [self.state, self.measures, self.limit, self.include_ref],
                           [self.message, self.table, self.summary_plot, self.topk_plot,
                            self.json_btn, self.html_btn], api_name="build_report")

    def run(self, session: Session, measures: list[str], limit: float, include_ref: bool,
            progress=gr.Progress()):
        if not measures:
            raise gr.Error("Pick at least one measure.")
        try:
            load_suite(self.ctx.demo_dir)  # fail here, with a message, not in the GPU call
            names = self.ctx.side_names(session, with_reference=bool(include_ref))
            config = AuditConfig(measures=tuple(measures), limit=int(limit))
        except (AuditError, ModelLoadError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        t0 = time.perf_counter()
        report = gpu_tasks.drain(gpu_tasks.audit_report(
            self.ctx.store_key, names, str(self.ctx.demo_dir), config), progress)
        models = names
        out_dir = self.ctx.runs_dir / "reports" / f"{time.strftime('%Y%m%d-%H%M%S')}-{session.id}"
        paths = write_report(report, out_dir)
        headers, rows = score_table(report, names)
        topk = None
        if report.topk:
            first = report.topk[0]
            topk = topk_bars({n: [tuple(t) for t in d] for n, d in first["models"].items()},
                             first["prompt"])
        skipped = f" Skipped: {'; '.join(report.skipped)}." if report.skipped else ""
        which = "; ".join(f"{role} = `{short_name(name)}`" for role, name in models.items())
        own = ""
        if models.get("unlearned") != self.ctx.startup.sides.get("unlearned"):
            own = (" **Note:** the unlearned column is the model loaded into the right-hand side "
                   "in this session, not the app's start-up model.")
        return {self.message: f"Report on {', '.join(models)} ({which}) in "
                              f"{time.perf_counter() - t0:.1f} s, written to "
                              f"`reports/{out_dir.name}`."
                              + own
                              + skipped,
                self.table: gr.Dataframe(value=rows, headers=headers),
                self.summary_plot: scores_summary({n: r.scores
                                                   for n, r in report.models.items()}),
                self.topk_plot: topk,
                self.json_btn: gr.DownloadButton(value=str(paths["json"]), interactive=True),
                self.html_btn: gr.DownloadButton(value=str(paths["html"]), interactive=True)}
