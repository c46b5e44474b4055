"""The llama2-whp preset on a tiny Llama-2-shaped pair, every tab, under a ZeroGPU stand-in.

The stand-in replaces every `@gpu` entry point (`ui.gpu.ENTRY_POINTS`) with what `spaces.GPU`
does to it: the call's arguments are pickled on the way in and every result (each yielded item of
a generator) on the way out. Its pickler is stricter than `spaces`: a model, a tensor, a
tokenizer, a lock, an Event or a Gradio component anywhere in the data fails the test, so only
plain data (names, prompts, settings, probe records, scores) crosses the boundary.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import threading
from pathlib import Path

import gradio as gr
import pytest
import torch
from transformers import PreTrainedTokenizerBase

from ui import gpu as gpu_mod
from ui.blocks import build_ui
from ui.config import parse_config
from ui.testing import write_tiny_demo, write_tiny_llama2_pair
from unlearn.demo.tasks import write_tasks

HP = Path(__file__).resolve().parents[1] / "assets" / "hp"
FORBIDDEN = (torch.nn.Module, torch.Tensor, PreTrainedTokenizerBase, gr.blocks.Block,
             type(threading.Lock()), threading.Event)


class StrictPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, FORBIDDEN):
            raise pickle.PicklingError(f"{type(obj).__name__} crosses the GPU boundary")
        return NotImplemented


def roundtrip(value, where: str):
    buf = io.BytesIO()
    try:
        StrictPickler(buf).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise AssertionError(f"{where}: {exc}") from exc
    return pickle.loads(buf.getvalue())


def as_spaces_would(name: str, fn, calls: list[str]):
    """`spaces.GPU(fn)`, as far as data goes: pickled arguments, pickled results."""
    if inspect.isgeneratorfunction(fn):
        def gen(*args, **kwargs):
            calls.append(name)
            args, kwargs = roundtrip((args, kwargs), f"{name} arguments")
            for item in fn(*args, **kwargs):
                yield roundtrip(item, f"{name} yielded")
        return gen

    def call(*args, **kwargs):
        calls.append(name)
        args, kwargs = roundtrip((args, kwargs), f"{name} arguments")
        return roundtrip(fn(*args, **kwargs), f"{name} result")
    return call


@pytest.fixture(scope="module")
def zerogpu():
    """Every entry point wrapped as spaces would; the list of calls made through them."""
    importlib.import_module("ui.gpu_tasks")  # registers its entry points
    calls: list[str] = []
    saved = []
    for qualified, fn in gpu_mod.ENTRY_POINTS.items():
        module_name, attr = qualified.rsplit(".", 1)
        if not module_name.startswith("ui."):
            continue  # entry points registered by other tests
        module = importlib.import_module(module_name)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, as_spaces_would(qualified, fn, calls))
    yield calls
    for module, attr, original in saved:
        setattr(module, attr, original)


@pytest.fixture(scope="module")
def app(zerogpu, tmp_path_factory):
    """The app with the llama2-whp preset's settings on the tiny pair: 4-bit, llama2, HP suite."""
    root = tmp_path_factory.mktemp("llama2")
    original, unlearned = write_tiny_llama2_pair(root)
    config = parse_config(["--preset", "llama2-whp", "--original", str(original),
                           "--unlearned", str(unlearned), "--device", "cpu",
                           "--quantization", "4bit", "--runs-dir", str(root / "runs")], env={})
    assert config.chat_template == "llama2" and config.dtype == "float16"
    assert Path(config.demo_dir) == HP and config.reference == ""
    return build_ui(config)


@pytest.fixture()
def session(app):
    return app.whp.ctx.new_session()


def test_the_pair_is_loaded_in_4bit_with_a_llama_tokenizer(app):
    ctx = app.whp.ctx
    for side in ("original", "unlearned"):
        loaded = ctx.store.get(ctx.startup.sides[side])
        assert type(loaded.model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
        assert type(loaded.tokenizer).__name__ == "LlamaTokenizer"
        assert loaded.tokenizer.chat_template is None  # like the WHP model's tokenizer
    assert not ctx.startup.notices


def test_side_by_side_in_chat_mode_with_the_llama2_template(app, session, zerogpu):
    tab = app.whp.side_by_side
    assert tab.template.value == "llama2"
    updates = list(tab.generate(session, "Who is Harry Potter's best friend?", "chat", 6, 0.0,
                                0.95, 0, 1.0, 0, "llama2", "Answer briefly."))
    assert updates[-1][tab.status].startswith("Done")
    assert set(session.log[-1]["outputs"]) == {"original", "unlearned"}
    assert session.log[-1]["errors"] == {"original": None, "unlearned": None}
    assert "Leak check (rule judge, 0-3): Original " in updates[-1][tab.status]
    assert set(session.log[-1]["leak_grades"]) == {"original", "unlearned"}
    assert "ui.gpu_tasks.stream_pair" in zerogpu
    # the examples come from the Harry Potter suite
    assert any("Harry" in e[0] for e in tab_examples(app))


def test_sample_k_and_hp_presets_through_plain_data(app, session, zerogpu):
    tab = app.whp.side_by_side
    assert any(label.startswith("question/answer: ") and "Harry Potter" in label
               for label in tab.presets)  # attack presets from the Harry Potter suite
    prompt = tab.pick_attack(next(iter(tab.presets)))
    out = tab.sample_k(session, prompt, "completion", 4, 0.9, 0.95, 0, 1.0, 3, "llama2", "", 2,
                       "", progress=None)
    assert [r[1] for r in out[tab.samples].value["data"]] == [3, 4, 3, 4]
    assert "Leak rate" in out[tab.rates]
    assert "ui.gpu_tasks.sample_pair" in zerogpu


def tab_examples(app):
    return [b for b in app.blocks.values() if isinstance(b, gr.Dataset)][0].samples


def test_stop_reaches_the_stream_through_plain_data(app, session):
    tab = app.whp.side_by_side
    it = tab.generate(session, "Hogwarts is", "completion", 300, 0.8, 0.95, 0, 1.0, 0,
                      "llama2", "")
    next(it)
    next(it)
    assert isinstance(session.run_id, str)
    tab.stop(session)
    rest = list(it)
    assert rest[-1][tab.status].startswith("Stopped")


def test_completion_probes_on_the_hp_suite(app, session, zerogpu):
    tab = app.whp.probes
    out = tab.run(session, "Target probes", None, 3, False, 4, 1.0, 0)
    table = out[tab.table].value
    assert table["data"][0][1].startswith("Harry Potter packed his trunk")
    assert [r[0] for r in out[tab.scores].value["data"]] == ["original", "unlearned"]
    assert "ui.gpu_tasks.completion_probes" in zerogpu


def test_token_probabilities_on_an_hp_probe(app, session, zerogpu):
    tab = app.whp.tokens
    label = next(iter(tab.choices))
    assert label.startswith("hp-001") and label.endswith("-> Granger")
    picked = tab.pick_probe(label)
    out = tab.show(session, picked[tab.prompt], 5, picked[tab.chosen])
    assert [t.name for t in out[tab.plot].data] == ["original", "unlearned"]
    assert out[tab.chosen_table].value["data"][0][0] == repr(" Granger")
    assert "ui.gpu_tasks.token_distributions" in zerogpu


def test_anchored_terms_are_the_hp_dictionary(app, session):
    tab = app.whp.anchors
    rows = tab.table.value["data"]
    assert ["Hogwarts", "Mystic Academy | the academy"] in [r[:2] for r in rows]
    out = tab.preview(session, rows, "Harry flew over Hogwarts on his Firebolt.", 0)
    translated = "".join(t for t, _ in out[tab.translated_hl])
    assert "Hogwarts" not in translated and "Firebolt" not in translated


def test_finetune_is_refused_without_a_target_text(app, session):
    tab = app.whp.finetune
    rows = [["Hogwarts", "Mystic Academy", ""]]
    with pytest.raises(gr.Error, match="No target text"):
        tab.start(session, rows, 5.0, 2, 1e-3, True, 256, 32, 0.25)
    assert not app.whp.ctx.job.busy


def test_report_on_the_hp_suite(app, session, zerogpu):
    tab = app.whp.report
    out = tab.run(session, ["probability", "trivia", "general", "verbatim"], 3, False)
    names = [r[-1] for r in out[tab.table].value["data"]]
    assert "probability_familiarity" in names and "trivia_accuracy" in names
    assert "verbatim" in out[tab.message]  # skipped: the suite has no book text
    assert "ui.gpu_tasks.audit_report" in zerogpu


@pytest.fixture(scope="module")
def erase_app(zerogpu, tmp_path_factory):
    """The llama2-whp preset on the tiny pair, with a demo folder that has labelled tasks (the
    Harry Potter suite has none)."""
    root = tmp_path_factory.mktemp("llama2_erase")
    original, unlearned = write_tiny_llama2_pair(root)
    demo_dir = write_tiny_demo(root / "demo")
    write_tasks(demo_dir / "tasks", n_train=24, n_test=8, seed=0)
    config = parse_config(["--preset", "llama2-whp", "--original", str(original),
                           "--unlearned", str(unlearned), "--device", "cpu",
                           "--quantization", "4bit", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    return build_ui(config)


def test_in_context_unlearning_through_plain_data(erase_app, zerogpu):
    tab, session = erase_app.whp.erase, erase_app.whp.ctx.new_session()
    events = []
    out = tab.select(session, "moods", 3, 1.0, progress=lambda f, desc="": events.append(desc))
    view = out[tab.view]
    assert len(view.state.prompt_ids()) == 3 and "moods" in out[tab.status]
    assert any(d.startswith("embedding 24 training examples") for d in events)
    assert "ui.gpu_tasks.erase_embeddings" in zerogpu
    rows = tab.answer(session, view, "at the old park on Monday, Tom")[tab.answers].value["data"]
    assert [r[0] for r in rows] == view.task.labels
    for side in (1, 2):
        assert sum(r[side] for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert "ui.gpu_tasks.erase_label_probs" in zerogpu
    acc = tab.evaluate(session, view, 8, progress=None)[tab.acc].value["data"]
    assert [r[1] for r in acc] == ["original", "unlearned"] and [r[4] for r in acc] == [8, 8]
    assert all(0 <= r[2] <= 1 and 0 <= r[3] <= 1 for r in acc)
    assert "ui.gpu_tasks.erase_accuracy" in zerogpu


def test_adversarial_attacks_on_the_hp_suite(app, session, zerogpu):
    tab = app.whp.adversarial
    out = tab.run(session, ["lens", "icl"], "0", "full", "0,1", 1, False, progress=None)
    rows = {r[0]: r[1:] for r in out[tab.table].value["data"]}
    assert len(rows["probability_familiarity (clean)"]) == 2  # original, unlearned
    assert "icl_relearn_probability" in rows and out[tab.lens_plot] is not None
    assert "ui.gpu_tasks.adversarial_attacks" in zerogpu


def test_gpu_memory_is_read_inside_the_gpu_context(zerogpu, monkeypatch):
    from ui.config import gpu_memory_gb

    monkeypatch.delenv("WHP_GPU_MEMORY_GB", raising=False)
    assert gpu_memory_gb() is None  # no GPU here: the CUDA runtime and nvidia-smi say so
    assert "ui.gpu.cuda_memory_gb" in zerogpu
    monkeypatch.setenv("WHP_GPU_MEMORY_GB", "70")
    assert gpu_memory_gb() == 70.0  # the override wins


def test_every_entry_point_went_through_the_stand_in(zerogpu):
    ours = {n for n in gpu_mod.ENTRY_POINTS if n.startswith("ui.")}
    assert ours == {"ui.gpu.cuda_memory_gb", "ui.gpu_tasks.stream_pair", "ui.gpu_tasks.sample_pair",
                    "ui.gpu_tasks.completion_probes", "ui.gpu_tasks.token_distributions",
                    "ui.gpu_tasks.audit_report", "ui.gpu_tasks.erase_embeddings",
                    "ui.gpu_tasks.erase_label_probs", "ui.gpu_tasks.erase_accuracy",
                    "ui.gpu_tasks.adversarial_attacks"}
    assert ours <= set(zerogpu)


def test_the_stand_in_fails_on_a_model_or_a_lock():
    with pytest.raises(AssertionError, match="Linear crosses"):
        roundtrip({"model": torch.nn.Linear(2, 2)}, "x")
    with pytest.raises(AssertionError, match="lock"):
        roundtrip([threading.Lock()], "x")


def test_status_line_names_the_failed_side_and_the_leaks(app):
    from ui.tab_side_by_side import leak_line, status_line

    assert status_line(False, [None, None], 1.0, 1).startswith("Done in 1.0 s")
    one = status_line(False, [None, "OutOfMemoryError: CUDA"], 1.0, 2)
    assert one.startswith("Done on one side only") and "Unlearned failed: OutOfMemoryError" in one
    both = status_line(False, ["ValueError: a", "ValueError: b"], 1.0, 3)
    assert both.startswith("Both sides failed") and "Original failed: ValueError: a" in both
    judge = app.whp.side_by_side.judge  # the HP suite's term lists
    prompt = "At school, the boy's best friend was"
    line = leak_line({"original": judge.grade(prompt, " Ron Weasley, from Gryffindor."),
                      "unlearned": judge.grade(prompt, " a quiet boy named Tom.")})
    assert "Original 3 (new unique terms: " in line and "Gryffindor" in line
    assert line.endswith("Unlearned 0.")
