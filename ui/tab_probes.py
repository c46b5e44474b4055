"""Completion probes: sample completions of a probe set from each model, grade them, score them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gradio as gr

from audits.errors import AuditError
from audits.familiarity import CompletionConfig
from audits.generation import GenerationConfig
from audits.probes import CompletionProbe, load_probes
from ui import gpu_tasks
from ui.gpu_tasks import load_judge
from ui.state import AppContext, Session
from unlearn.models import ModelLoadError

SOURCES = {"Target probes": "target_completion.jsonl",
           "Neighbour probes": "neighbour_completion.jsonl",
           "Uploaded JSONL": None}


def wide_rows(results: dict) -> list[dict]:
    """One row per probe: prompt, then completion / grade / rationale of each model."""
    rows: list[dict] = []
    for name, res in results.items():
        for i, item in enumerate(res.items):
            if len(rows) <= i:
                rows.append({"id": item.id, "prompt": item.prompt})
            rows[i].update({f"{name} completion": item.completion, f"{name} grade": item.grade,
                            f"{name} rationale": item.rationale})
    return rows


def score_rows(results: dict) -> list[list]:
    return [[name, round(res.score, 3), res.n, *(res.distribution[g] for g in range(4))]
            for name, res in results.items()]


SCORE_HEADERS = ["model", "familiarity (5*#3+#2)/N", "n", "#0", "#1", "#2", "#3"]


class ProbesTab:
    """Components and handlers of the Completion probes tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        has_ref = bool(ctx.startup.reference)
        with gr.Row():
            self.source = gr.Dropdown(list(SOURCES), value=next(iter(SOURCES)),
                                      label="Probe set")
            self.upload = gr.File(label="Your probe file (JSONL, completion schema)",
                                  file_types=[".jsonl"], type="filepath", height=120)
            with gr.Column():
                self.limit = gr.Slider(1, 200, value=20, step=1, label="Probes to run",
                                       elem_id="probes-limit")
                self.include_ref = gr.Checkbox(has_ref, label="Include the reference model",
                                               interactive=has_ref)
        with gr.Accordion("Sampling", open=False), gr.Row():
            self.max_new = gr.Slider(4, 128, value=24, step=1, label="Max new tokens")
            self.temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature")
            self.seed = gr.Number(0, precision=0, label="Seed")
        self.run_btn = gr.Button("Run probes", variant="primary", elem_id="probes-run")
        self.message = gr.Markdown("", elem_id="probes-message")
        self.scores = gr.Dataframe(headers=SCORE_HEADERS, label="Familiarity scores",
                                   interactive=False, elem_id="probes-scores")
        self.table = gr.Dataframe(headers=["id", "prompt"], label="Completions",
                                  interactive=False, wrap=True,
                                  elem_id="probes-table", max_height=500)
        with gr.Row():
            self.csv_btn = gr.DownloadButton("Download CSV", interactive=False, size="sm")
            self.json_btn = gr.DownloadButton("Download JSON", interactive=False, size="sm")
        self.upload.upload(self.check_upload, [self.upload], [self.message, self.source])
        self.run_btn.click(self.run, [self.state, self.source, self.upload, self.limit,
                                      self.include_ref, self.max_new, self.temperature,
                                      self.seed],
                           [self.message, self.scores, self.table, self.csv_btn,
                            self.json_btn], api_name="run_probes")

    def probes(self, source: str, upload: str | None) -> list[CompletionProbe]:
        """The chosen probe set, validated by the audits' loader (raises `ProbeError`)."""
        fname = SOURCES.get(source)
        if fname is None:
            if not upload:
                raise AuditError("Upload a JSONL probe file first.")
            return load_probes(upload, CompletionProbe)
        return load_probes(self.ctx.demo_dir / "probes" / fname, CompletionProbe)

    def check_upload(self, upload: str | None):
        """Validate an uploaded file at once; errors name the line and field."""
        if not upload:
            return {self.message: ""}
        try:
            n = len(load_probes(upload, CompletionProbe))
        except AuditError as exc:
            return {self.message: f"**Invalid probe file:** {exc}"}
        return {self.message: f"Loaded {n} probes from {Path(upload).name}.",
                self.source: "Uploaded JSONL"}

    def run(self, session: Session, source: str, upload: str | None, limit: float,
            include_ref: bool, max_new: float, temperature: float, seed,
            progress=gr.Progress()):
        try:
            probes = self.probes(source, upload)[:int(limit)]
            load_judge(self.ctx.demo_dir)  # fail here, with a message, not in the GPU call
            names = self.ctx.side_names(session, with_reference=bool(include_ref))
            config = CompletionConfig(GenerationConfig(
                max_new_tokens=int(max_new), temperature=float(temperature),
                seed=int(seed or 0)))
        except (AuditError, ModelLoadError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        results = gpu_tasks.drain(gpu_tasks.completion_probes(
            self.ctx.store_key, names, probes, str(self.ctx.demo_dir), config), progress)
        models = names
        rows = wide_rows(results)
        session.probe_rows = rows
        session.probe_scores = {n: r.to_dict() for n, r in results.items()}
        csv_path, json_path = self.write_downloads(
            session, rows, dict(names))
        return {self.message: f"Ran {len(probes)} probes on {', '.join(models)}.",
                self.scores: gr.Dataframe(value=score_rows(results), headers=SCORE_HEADERS),
                self.table: gr.Dataframe(value=[list(r.values()) for r in rows],
                                         headers=list(rows[0]) if rows else None),
                self.csv_btn: gr.DownloadButton(value=str(csv_path), interactive=True),
                self.json_btn: gr.DownloadButton(value=str(json_path), interactive=True)}

    def write_downloads(self, session: Session, rows: list[dict],
                        names: dict[str, str]) -> tuple[Path, Path]:
        csv_path = self.ctx.session_file(session, "completion_probes.csv")
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["id"])
            writer.writeheader()
            writer.writerows(rows)
        json_path = self.ctx.session_file(session, "completion_probes.json")
        json_path.write_text(json.dumps({"models": names, "results": session.probe_scores},
                                        indent=1), encoding="utf-8")
        return csv_path, json_path
