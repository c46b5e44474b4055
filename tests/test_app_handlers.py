"""Handler-level tests of every tab, on tiny models and a miniature demo folder (no server)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from ui import anchors_view as av
from ui.blocks import TAB_NAMES, build_ui
from ui.config import parse_config
from ui.testing import write_tiny_demo


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    """The app's Blocks on two copies of the tiny model, a tiny demo folder, a temp runs dir."""
    root = tmp_path_factory.mktemp("app")
    demo_dir = write_tiny_demo(root / "demo")
    config = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                           str(tiny_model_dir), "--reference", "", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    return build_ui(config)


def _path(update) -> Path:
    """The file path a DownloadButton/File update points at."""
    value = getattr(update, "value", update)
    return Path(value["path"] if isinstance(value, dict) else value)


@pytest.fixture()
def session(app):
    return app.whp.ctx.new_session()


def test_tabs_are_named_as_the_issue_says(app):
    labels = [b.label for b in app.blocks.values() if isinstance(b, gr.Tab)]
    assert labels == list(TAB_NAMES)


# ---------------------------------------------------------------- Side by side

def _generate(tab, session, prompt="Mira walked", max_new=8, **kw):
    args = dict(mode="completion", max_new=max_new, temperature=0.8, top_p=0.95, top_k=0,
                rep=1.0, seed=0, template="auto", system="")
    args.update(kw)
    return tab.generate(session, prompt, **args)


def test_side_by_side_streams_both_panes_and_logs(app, session):
    tab = app.whp.side_by_side
    updates = list(_generate(tab, session))
    pane_updates = [u for u in updates if tab.panes["original"] in u and
                    tab.panes["unlearned"] in u]
    assert pane_updates, "no pane updates"
    last = pane_updates[-1]
    assert last[tab.panes["original"]] and last[tab.panes["unlearned"]]
    final = updates[-1]
    path = _path(final[tab.log_btn])
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["prompt"] == "Mira walked"
    assert set(rows[0]["outputs"]) == {"original", "unlearned"}
    assert rows[0]["stopped"] is False
    second = list(_generate(tab, session, prompt="Second"))[-1]
    assert len(_path(second[tab.log_btn]).read_text().splitlines()) == 2


def test_side_by_side_stop_sets_flag_and_ends_run(app, session, monkeypatch):
    import ui.tab_side_by_side

    # the run is driven from this thread, so Stop cannot wait for its final status here
    monkeypatch.setattr(ui.tab_side_by_side, "STOP_WAIT_S", 0.0)
    tab = app.whp.side_by_side
    it = _generate(tab, session, max_new=240, temperature=0.8)  # context 256
    next(it)  # the "Generating..." update
    next(it)  # first tokens
    t0 = time.perf_counter()
    assert tab.stop(session) == {tab.status: "Stopping..."}
    rest = list(it)
    assert time.perf_counter() - t0 < 5
    assert "Stopped" in rest[-1][tab.status]
    assert session.log[-1]["stopped"] is True
    # a late click has nothing to stop, keeps the finished run's summary and says so
    late = tab.stop(session)[tab.status]
    assert late.startswith(rest[-1][tab.status]) and "nothing to stop" in late


def test_a_run_that_cannot_start_says_so_in_the_status(app, session):
    """Prompt + new tokens over the context: the status says why (it was left at
    "Generating..." before), the error reaches the page, and Stop has nothing to stop."""
    import gradio as gr

    tab = app.whp.side_by_side
    it = _generate(tab, session, max_new=512)
    assert next(it)[tab.status] == "Generating..."
    update = next(it)
    assert update[tab.status].startswith("Not run: Max new tokens (512) fills")
    assert "minus the prompt's length in tokens" in update[tab.status]  # what to change
    with pytest.raises(gr.Error, match="no room for the prompt"):
        next(it)
    late = tab.stop(session)[tab.status]  # nothing to stop: the status is kept
    assert late.startswith(update[tab.status]) and "nothing to stop" in late


def test_stop_answers_with_the_final_status_of_the_run(app, session):
    """As in the app, the run streams in another thread: Stop waits for it to end and answers
    with its final status, so the page shows "Stopped" whichever answer arrives last."""
    import threading

    tab = app.whp.side_by_side
    it = _generate(tab, session, max_new=240, temperature=0.8)
    next(it)
    next(it)
    updates: list = []
    runner = threading.Thread(target=lambda: updates.extend(it))
    runner.start()
    answer = tab.stop(session)[tab.status]
    runner.join(timeout=30)
    assert answer.startswith("Stopped")
    assert answer == updates[-1][tab.status]


def test_side_by_side_chat_mode_and_empty_prompt(app, session):
    tab = app.whp.side_by_side
    updates = list(_generate(tab, session, mode="chat", template="llama2", system="Be brief."))
    assert session.log[-1]["settings"]["mode"] == "chat"
    assert updates[-1][tab.status].startswith("Done")
    with pytest.raises(gr.Error):
        list(_generate(tab, session, prompt="   "))


# ---------------------------------------------------------------- Completion probes

def test_completion_probes_table_scores_and_downloads(app, session):
    tab = app.whp.probes
    out = tab.run(session, "Target probes", None, 3, False, 6, 1.0, 0)
    scores = out[tab.scores].value
    assert [r[0] for r in scores["data"]] == ["original", "unlearned"]
    table = out[tab.table].value
    assert "original grade" in table["headers"] and "unlearned rationale" in table["headers"]
    assert len(table["data"]) == 3
    csv_text = _path(out[tab.csv_btn]).read_text()
    assert csv_text.startswith("id,prompt,original completion")
    data = json.loads(_path(out[tab.json_btn]).read_text())
    assert set(data["results"]) == {"original", "unlearned"}


def test_uploaded_probe_file_is_validated(app, tmp_path, session):
    tab = app.whp.probes
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "b"}\n')
    msg = tab.check_upload(str(bad))[tab.message]
    assert "Invalid probe file" in msg and ":2" in msg and "prompt" in msg
    with pytest.raises(gr.Error, match="prompt"):
        tab.run(session, "Uploaded JSONL", str(bad), 3, False, 6, 1.0, 0)
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "prompt": "Mira went"}\n')
    out = tab.check_upload(str(good))
    assert out[tab.source] == "Uploaded JSONL"
    res = tab.run(session, "Uploaded JSONL", str(good), 10, False, 4, 1.0, 0)
    assert len(res[tab.table].value["data"]) == 1


# ---------------------------------------------------------------- Token probabilities

def test_token_probabilities_plot_and_chosen_tokens(app, session):
    tab = app.whp.tokens
    label = next(iter(tab.choices))
    picked = tab.pick_probe(label)
    assert picked[tab.chosen].startswith(" Pip")
    out = tab.show(session, picked[tab.prompt], 5, picked[tab.chosen])
    fig = out[tab.plot]
    assert [t.name for t in fig.data] == ["original", "unlearned"]
    rows = out[tab.chosen_table].value["data"]
    assert rows[0][0] == repr(" Pip") and 0 <= rows[0][1] <= 1


def test_steps_plot_from_evals_jsonl(app, tmp_path):
    tab = app.whp.tokens
    recs = [{"step": s, "probability_familiarity": p, "tracked": [
        {"prompt": "Mira's owl", "token": " Pip", "prob": p}]} for s, p in ((0, .5), (5, .1))]
    run = Path(app.whp.ctx.runs_dir) / "evals-only-run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "evals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tab.steps("evals-only-run")  # a run name, as the dropdown lists it
    assert list(out[tab.steps_plot].data[0].y) == [0.5, 0.1]
    assert out[tab.steps_table].value["data"][1][:2] == [5, 0.1]
    with pytest.raises((gr.Error, ValueError)):
        tab.steps("nothing")
    (tmp_path / "evals.jsonl").write_text((run / "evals.jsonl").read_text())
    with pytest.raises(ValueError, match="runs directory"):  # a folder outside the runs dir
        tab.steps(str(tmp_path))
    import shutil

    shutil.rmtree(run)


# ---------------------------------------------------------------- Anchored terms

def test_anchor_validation_messages_per_row(app):
    tab = app.whp.anchors
    rows = [["Gallowmere", "the city school", ""], ["Pip", "Pip", ""],
            ["Mira", "Anna | Mira Smith", ""], ["gallowmere ", "school", ""]]
    out = tab.validate(rows)[tab.table]
    issues = {r[0]: r[2] for r in out}
    assert "equals the key" in issues["Pip"]
    assert "contains the key" in issues["Mira"]
    assert "duplicate key" in issues["Gallowmere"]
    assert "error" in tab.validate(rows)[tab.message]


def test_anchor_add_delete_import_export(app, session, tmp_path):
    tab = app.whp.anchors
    rows = [["Gallowmere", "the city school", ""]]
    added = tab.add_row(rows)[tab.table]
    assert len(added) == 2 and added[1][:2] == ["", ""]
    added[1][:2] = ["Pip", "Max|Rex"]
    out = tab.delete_row(added, 0)
    assert [r[0] for r in out[tab.table]] == ["Pip"]
    with pytest.raises(gr.Error):
        tab.delete_row(added, None)
    for fmt in ("json", "csv"):
        path = tab.export([["Pip", "Max | Rex", ""]], session, fmt)[tab.export_file]
        imported = tab.import_dictionary(path)[tab.table]
        assert imported[0][:2] == ["Pip", "Max | Rex"]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(gr.Error, match="Cannot import"):
        tab.import_dictionary(str(bad))


def test_anchor_suggestions_and_accept(app, session):
    tab = app.whp.anchors
    rows = [["Gallowmere", "the city school", ""]]
    cands = tab.suggest(session, rows)[tab.candidates]
    terms = [c[0] for c in cands]
    assert "Gallowmere" not in terms and terms, terms
    out = tab.accept(rows, cands, 0)[tab.table]
    assert out[-1][0] == terms[0] and "no translation" in out[-1][2]
    merged = tab.accept(rows, cands)[tab.table]  # accept all: casefold duplicates added once
    keys = [r[0].casefold() for r in merged]
    assert len(keys) == len(set(keys)) and len(merged) > 2


def test_anchor_preview_highlights_terms_and_mapping(app, session):
    tab = app.whp.anchors
    rows = [["Mira Thistlewood", "Anna Smith", ""], ["Pip", "Max", ""]]
    text = "Mira Thistlewood's owl was called Pip. Later Pip flew."
    out = tab.preview(session, rows, text, 0)
    labels = {lab for _, lab in out[tab.original_hl]}
    assert av.LABEL_TERM in labels and av.LABEL_MASKED in labels
    translated = "".join(t for t, _ in out[tab.translated_hl])
    assert "Anna Smith" in translated and "Max" in translated and "Pip" not in translated
    assert any(lab == av.LABEL_TRANSLATION for _, lab in out[tab.translated_hl])
    assert out[tab.mapping][0][0] == 0
    with pytest.raises(gr.Error, match="Fix the dictionary"):
        tab.preview(session, [["Pip", "Pip", ""]], text, 0)
    # a newline after a used translation adds its no-space forms for one position: that is not
    # where forbidding starts, so no token is marked "forbids from here"
    out = tab.preview(session, rows, "Pip flew.\nThen the owl slept.\nMira sang.", 0)
    assert av.LABEL_FORBIDS not in {lab for _, lab in out[tab.original_hl]}


# ---------------------------------------------------------------- Finetune

def _finetune_args(steps=2):
    rows = [["Mira Thistlewood", "Anna Smith", ""], ["Gallowmere", "the city school", ""],
            ["Pip", "Max", ""]]
    return rows, 5.0, steps, 1e-3, False, 256, 32, 0.25


def test_finetune_run_progress_and_load_into_right_side(app, session):
    tab, job = app.whp.finetune, app.whp.ctx.job
    out = tab.start(session, *_finetune_args())
    assert "Started" in out[tab.status]
    other = app.whp.ctx.new_session()
    busy = tab.start(other, *_finetune_args())  # one run at a time for the whole server
    assert "Busy" in busy[tab.status] or not job.busy
    assert job.wait(timeout=120), "finetune did not finish"
    snap = job.snapshot()
    assert snap["state"] == "done", snap
    assert {"reinforce", "labels", "finetune"} <= set(snap["stages"])
    polled = tab.poll(session, -1)
    assert "Done" in polled[tab.status] and polled[tab.load_btn].interactive
    assert tab.poll(session, snap["version"]) == {tab.seen_version: snap["version"]}
    loaded = tab.load_final(session)
    assert session.sides["unlearned"].endswith("final")
    assert app.whp.side_by_side.panes["unlearned"] in loaded
    assert snap["run_dir"] in [r[0] for r in [[str(Path(tab.ctx.runs_dir) / x[0])]
                                              for x in tab.refresh()[tab.runs]]]
    assert (Path(snap["run_dir"]) / "evals.jsonl").is_file()
    session.sides["unlearned"] = app.whp.ctx.startup.sides["unlearned"]


def test_suggestions_from_the_reinforced_model_of_a_run(app, session):
    tab = app.whp.anchors
    assert app.whp.ctx.job.wait(timeout=120)
    cands = tab.suggest(session, [["Gallowmere", "the city school", ""]], True)[tab.candidates]
    assert any("reinforced model raises" in c[3] for c in cands), cands


def test_finetune_cancel(app, session):
    tab, job = app.whp.finetune, app.whp.ctx.job
    assert job.wait(timeout=120)
    tab.start(session, *_finetune_args(steps=200))
    other = app.whp.ctx.new_session()
    assert "another session" in tab.cancel(other)[tab.status]
    assert "Cancelling" in tab.cancel(session)[tab.status]
    assert job.wait(timeout=120)
    assert job.snapshot()["state"] == "cancelled", job.snapshot()


def test_finetune_invalid_parameter_leaves_no_run_folder(app, session):
    tab = app.whp.finetune
    assert app.whp.ctx.job.wait(timeout=120)
    before = set(Path(tab.ctx.runs_dir).iterdir()) if Path(tab.ctx.runs_dir).exists() else set()
    rows, alpha, steps, _, lora, tokens, block, epochs = _finetune_args()
    with pytest.raises(gr.Error, match="lr"):
        tab.start(session, rows, alpha, steps, -1.0, lora, tokens, block, epochs)
    after = set(Path(tab.ctx.runs_dir).iterdir()) if Path(tab.ctx.runs_dir).exists() else set()
    assert after == before  # validated before anything was written


def test_finetune_refuses_an_invalid_dictionary(app, session):
    with pytest.raises(gr.Error, match="Fix the dictionary"):
        app.whp.finetune.start(session, [["Pip", "Pip", ""]], 5.0, 2, 1e-3, False, 256, 32, 0.25)


# ---------------------------------------------------------------- Report

def test_report_scores_plots_and_files(app, session):
    tab = app.whp.report
    out = tab.run(session, ["probability", "trivia", "general"], 2, False)
    table = out[tab.table].value
    model = Path(app.whp.ctx.startup.sides["original"]).name
    assert table["headers"] == ["score", "range", "reading", f"original ({model})",
                                f"unlearned ({model})", "what it measures", "key"]
    rows = {r[-1]: r for r in table["data"]}
    assert "probability_familiarity" in rows and "trivia_accuracy" in rows
    prob = rows["probability_familiarity"]
    assert prob[:3] == ["Answer probability (target)", "0-1", "lower = forgot more"]
    assert all(v is None or v == round(v, 3) for v in prob[3:5])  # no 16-digit floats
    assert "mean probability" in prob[5].lower()
    assert "Report on original, unlearned (original = " in out[tab.message]
    assert _path(out[tab.json_btn]).name == "report.json"
    assert "<html" in _path(out[tab.html_btn]).read_text().lower()
    assert out[tab.summary_plot] is not None and out[tab.topk_plot] is not None
    with pytest.raises(gr.Error):
        tab.run(session, [], 2, False)


def test_sessions_do_not_share_logs(app):
    a, b = app.whp.ctx.new_session(), app.whp.ctx.new_session()
    a.log.append({"x": 1})
    assert b.log == [] and a.id != b.id
    assert isinstance(threading.Event(), type(threading.Event()))
