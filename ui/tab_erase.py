"""In-context unlearning (ERASE): select k prompt examples, answer with both models, delete
examples exactly (certificate or recompute), compare accuracy before/after, and the cost chart."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from ui import gpu_tasks
from ui.state import AppContext, Session
from unlearn.erase.cost import cost_figure, llama2_7b_estimate
from unlearn.erase.qkmeans import QKMeansConfig, QKMeansState, delete, fit
from unlearn.erase.task import Task, TaskError, load_task
from unlearn.models import ModelLoadError

PROMPT_HEADERS = ["#", "id", "input", "output"]
LOG_HEADERS = ["request", "ids", "action", "reason", "ms"]
ACC_HEADERS = ["deletions so far", "model", "k-shot (ERASE prompt)", "zero-shot", "test queries"]


@dataclass
class EraseView:
    """One session's selection: the task, the Q-k-means state and the accuracy history."""

    task: Task
    state: QKMeansState
    history: list[list] = field(default_factory=list)

    def shots(self):
        by_id = {ex.id: ex for ex in self.task.train}
        return [by_id[i] for i in self.state.prompt_ids()]


ICL_ROLE = "in-context demo model"


def icl_model(ctx: AppContext) -> str | None:
    """The in-context demo model (`icl`, built by `build-demo --only icl`) beside a local
    original model, if it was built: the story models cannot learn in context, it can."""
    original = ctx.startup.sides.get("original")
    if not original:
        return None
    path = Path(original).parent / "icl"
    return str(path) if (path / "config.json").is_file() else None


def _table(rows: list[list], headers: list[str]) -> gr.Dataframe:
    """A table update that keeps its column names (a bare list of rows, empty ones especially,
    shows the columns as 1, 2, 3 ...)."""
    return gr.Dataframe(value=rows, headers=headers)


def task_names(ctx: AppContext) -> list[str]:
    root = ctx.demo_dir / "tasks"
    return sorted(p.name for p in root.glob("*") if (p / "task.json").is_file())


def prompt_rows(view: EraseView) -> list[list]:
    return [[n + 1, ex.id, ex.input, ex.output] for n, ex in enumerate(view.shots())]


def log_rows(view: EraseView) -> list[list]:
    return [[n + 1, ", ".join(r.ids), r.action, r.reason, round(r.seconds * 1000, 3)]
            for n, r in enumerate(view.state.log)]


class EraseTab:
    """Components and handlers of the In-context unlearning tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        self.view = gr.State(None)
        self.icl = icl_model(ctx)
        names = task_names(ctx)
        gr.Markdown("Adapt the models by choosing k training examples for their prompt "
                    "(ERASE: quantized k-means over the original model's embeddings). Deleting "
                    "a training example is exact: the prompt is what a fresh selection without "
                    "it gives, usually certified without recomputing."
                    + (" The demo's story models cannot learn from examples in their prompt "
                       "(their accuracy stays near chance, 0.25); the **in-context demo model** "
                       "(`models/icl`, trained on exercise sheets) can, so it answers too."
                       if self.icl else ""))
        with gr.Row():
            self.task = gr.Dropdown(names, value=names[0] if names else None, label="Task",
                                    elem_id="erase-task")
            self.k = gr.Slider(1, 16, value=8, step=1, label="k (examples in the prompt)")
            self.eps = gr.Number(value=0.5, label="eps (grid step)", minimum=1e-4)
            self.select_btn = gr.Button("Select prompt", variant="primary",
                                        elem_id="erase-select")
        self.status = gr.Markdown(elem_id="erase-status")
        self.prompt = gr.Dataframe(headers=PROMPT_HEADERS, label="Selected prompt (click a row "
                                   "to put its id in the delete box)", interactive=False,
                                   elem_id="erase-prompt")
        with gr.Row():
            self.ids = gr.Textbox(label="Delete training example ids (comma-separated)",
                                  scale=3, elem_id="erase-ids")
            self.delete_btn = gr.Button("Delete", variant="stop", scale=1,
                                        elem_id="erase-delete")
        self.log = gr.Dataframe(headers=LOG_HEADERS, label="Deletion log", interactive=False)
        with gr.Row():
            self.query = gr.Textbox(label="Query input (the models answer with the prompt above)",
                                    scale=3, elem_id="erase-query")
            self.answer_btn = gr.Button("Answer", scale=1, elem_id="erase-answer")
        self.answers = gr.Dataframe(headers=["label"], label="Label probabilities with the "
                                    "prompt", interactive=False)
        with gr.Row():
            self.n_test = gr.Slider(8, 240, value=48, step=8, label="Test queries")
            self.eval_btn = gr.Button("Accuracy now", elem_id="erase-eval")
        self.acc = gr.Dataframe(headers=ACC_HEADERS, label="Accuracy (one row per model per "
                                "evaluation: before and after deletions)", interactive=False)
        self.cost_btn = gr.Button("Cost chart (Llama-2-7B, estimated from FLOPs)")
        self.cost = gr.Plot(label="Where in-context learning is cheaper than SISA finetuning")
        self.select_btn.click(self.select, [self.state, self.task, self.k, self.eps],
                              [self.view, self.prompt, self.log, self.status, self.acc],
                              api_name="erase_select")
        self.prompt.select(self.pick_row, [self.view], [self.ids])
        self.delete_btn.click(self.delete, [self.view, self.ids],
                              [self.view, self.prompt, self.log, self.status, self.ids],
                              api_name="erase_delete")
        self.answer_btn.click(self.answer, [self.state, self.view, self.query], [self.answers],
                              api_name="erase_answer")
        self.eval_btn.click(self.evaluate, [self.state, self.view, self.n_test],
                            [self.view, self.acc], api_name="erase_accuracy")
        self.cost_btn.click(self.cost_chart, [self.view, self.k], [self.cost])

    def _names(self, session: Session) -> dict[str, str]:
        try:
            names = self.ctx.side_names(session, with_reference=False)
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
        return {**names, ICL_ROLE: self.icl} if self.icl else names

    def select(self, session: Session, task_name: str | None, k: float, eps: float,
               progress=gr.Progress()):
        if not task_name:
            raise gr.Error(f"No task folders under {self.ctx.demo_dir / 'tasks'}.")
        task_dir = Path(self.ctx.demo_dir) / "tasks" / task_name
        try:
            task = load_task(task_dir)
            config = QKMeansConfig(k=int(k), eps=float(eps or 0))
        except (TaskError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        # the in-context model's states cluster by key better than a story model's
        embedder = self.icl or self._names(session)["original"]
        x = gpu_tasks.drain(gpu_tasks.erase_embeddings(
            self.ctx.store_key, embedder, str(task_dir), str(self.ctx.work_dir / "erase-cache")),
            progress)
        if progress is not None:
            progress(0.8, desc="quantized k-means")
        try:
            view = EraseView(task, fit(x, [ex.id for ex in task.train], config))
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        return {self.view: view, self.prompt: _table(prompt_rows(view), PROMPT_HEADERS),
                self.log: _table([], LOG_HEADERS), self.acc: _table([], ACC_HEADERS),
                self.status: f"Selected {config.k} of {len(task.train)} examples of "
                             f"**{task.name}** ({task.description}); embeddings from "
                             f"`{Path(embedder).name}`."}

    def pick_row(self, view: EraseView | None, evt: gr.SelectData):
        if view is None or evt.index is None:
            return {self.ids: gr.Textbox()}
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return {self.ids: view.state.prompt_ids()[int(row)]}

    def delete(self, view: EraseView | None, ids: str):
        """Delete the typed ids. A rejected request only warns and rewrites the status line:
        raising would mark every output (the prompt table, the log) as failed and hide them."""
        def rejected(message: str) -> dict:
            gr.Warning(message)
            return {self.status: f"Nothing deleted: {message}"}

        if view is None:
            return rejected("Select a prompt first.")
        wanted = [i.strip() for i in (ids or "").split(",") if i.strip()]
        if not wanted:
            return rejected("Type or click the id of a training example to delete.")
        unknown = view.state.not_alive(wanted)
        if unknown:
            return rejected(f"Unknown or already deleted id{'s' * (len(unknown) > 1)}: "
                            f"{', '.join(unknown)}. Click a row of the prompt table, or type "
                            f"ids like {view.task.train[0].id}.")
        view = copy.deepcopy(view)  # gr.State keeps the old one until we return the new one
        try:
            record = delete(view.state, wanted)
        except (KeyError, ValueError) as exc:
            return rejected(str(exc.args[0] if isinstance(exc, KeyError) else exc))
        verdict = ("certified: the prompt is unchanged" if record.action == "certified"
                   else "recomputed: the prompt was selected again without it")
        return {self.view: view, self.prompt: _table(prompt_rows(view), PROMPT_HEADERS),
                self.log: _table(log_rows(view), LOG_HEADERS),
                self.ids: "", self.status: f"Deleted {', '.join(wanted)}: {verdict} "
                                           f"({record.seconds * 1000:.2f} ms; {record.reason})."}

    def answer(self, session: Session, view: EraseView | None, query: str):
        if view is None:
            raise gr.Error("Select a prompt first.")
        if not query or not query.strip():
            raise gr.Error("Type a query input (e.g. one from the test split).")
        context = view.task.context(view.shots(), query.strip())
        probs = gpu_tasks.erase_label_probs(self.ctx.store_key, self._names(session), context,
                                            view.task.continuations())
        rows = [[label, *(round(p[i], 4) for p in probs.values())]
                for i, label in enumerate(view.task.labels)]
        return {self.answers: gr.Dataframe(value=rows, headers=["label", *probs])}

    def evaluate(self, session: Session, view: EraseView | None, n_test: float,
                 progress=gr.Progress()):
        if view is None:
            raise gr.Error("Select a prompt first.")
        try:
            result = gpu_tasks.drain(gpu_tasks.erase_accuracy(
                self.ctx.store_key, self._names(session), view.task, view.state.prompt_ids(),
                int(n_test)), progress)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        view = copy.deepcopy(view)
        for role, r in result.items():
            view.history.append([len(view.state.log), role, round(r["k_shot"], 4),
                                 round(r["zero_shot"], 4), r["queries"]])
        return {self.view: view, self.acc: _table(view.history, ACC_HEADERS)}

    def cost_chart(self, view: EraseView | None, k: float):
        n = len(view.task.train) if view else 1200
        rate = (sum(r.action == "recompute" for r in view.state.log) / len(view.state.log)
                if view and view.state.log else 0.0)
        units = llama2_7b_estimate(k=int(k), tokens_per_example=15, n_train=n, shards=4,
                                   epochs=2, recompute_rate=rate)
        return {self.cost: cost_figure(units)}
