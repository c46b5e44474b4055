"""Finetune on Trainer: every method, LoRA/QLoRA merged saves, cancel + resume, checkpoint evals."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_TEXT

from audits.checkpoint import checkpoint_evaluator
from audits.probability import probability_familiarity
from audits.probes import ProbabilityProbe
from unlearn.data import lm_dataset, pair_with_retain
from unlearn.evaluate import EvalConfig, read_evals
from unlearn.finetune import FinetuneConfig, finetune
from unlearn.label_store import select_alpha
from unlearn.models import load_model, load_tokenizer
from unlearn.training import collate, last_complete_checkpoint

TEXT = "\n\n".join(TINY_TEXT[:10])
FAST = dict(steps=3, lr=1e-3, batch_size=4, block_size=64, save_every=0)


pytestmark = pytest.mark.usefixtures("frozen_gc")


@pytest.fixture(scope="module")
def dataset(tiny_model_dir):
    return lm_dataset(load_tokenizer(str(tiny_model_dir)), TEXT, 64)


def _weights(path):
    model, _ = load_model(str(path))
    return {k: v.clone() for k, v in model.state_dict().items()}


def _changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_config_validation():
    with pytest.raises(ValueError, match="method must be one of"):
        FinetuneConfig(method="dpo")
    with pytest.raises(ValueError, match="LoRA"):
        FinetuneConfig(quantization="4bit")
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(steps=0)
    with pytest.raises(ValueError, match="quantization"):
        FinetuneConfig(lora=True, quantization="2bit")
    assert FinetuneConfig(lora_targets=["q_proj"]).lora_targets == ("q_proj",)


def test_collate_pads_every_field():
    rows = [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": [1, 2, 3],
             "block": 0, "ref_logp": -1.5},
            {"input_ids": [4], "attention_mask": [1], "labels": [-100], "block": 1,
             "ref_logp": -2.0}]
    batch = collate(rows, pad_id=9)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[1, 2, 3], [-100, -100, -100]]
    assert batch["ref_logp"].tolist() == [-1.5, -2.0] and "block" not in batch


def test_select_alpha(dataset):
    ds = dataset.add_column("labels_alpha_2.5", dataset["labels"])
    assert "labels" in select_alpha(ds, 2.5).column_names
    with pytest.raises(ValueError, match="alpha=10"):
        select_alpha(ds, 10.0)


@pytest.mark.parametrize("method", ["whp", "ga", "graddiff", "npo"])
def test_each_method_trains_and_saves(method, tiny_model_dir, dataset, tmp_path):
    data = pair_with_retain(dataset, dataset.select(range(3))) if method == "graddiff" else dataset
    events = []
    result = finetune(str(tiny_model_dir), data, tmp_path, FinetuneConfig(method=method, **FAST),
                      on_progress=events.append)
    assert result.status == "completed" and result.step == 3
    assert [e.step for e in events] == [1, 2, 3] and events[0].total == 3
    if method == "ga":
        assert all(loss < 0 for loss in result.losses)
    if method == "npo":  # at step 1 the policy is the reference: (2/beta) log 2
        assert result.losses[0] == pytest.approx(20 * 0.6931472, rel=1e-4)
    assert _changed(_weights(tiny_model_dir), _weights(tmp_path / "final"))
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no tmp dirs left


@pytest.mark.parametrize("quantization", ["none", "4bit"])
def test_lora_and_qlora_save_a_merged_model(quantization, tiny_model_dir, dataset, tmp_path):
    config = FinetuneConfig(lora=True, lora_r=4, quantization=quantization, **FAST)
    result = finetune(str(tiny_model_dir), dataset, tmp_path, config)
    final = tmp_path / "final"
    assert result.status == "completed"
    assert not (final / "adapter_config.json").exists()
    cfg = json.loads((final / "config.json").read_text())
    assert "quantization_config" not in cfg
    after = _weights(final)
    assert all(v.dtype == torch.float32 for v in after.values())
    assert not any("lora" in k for k in after)
    assert _changed(_weights(tiny_model_dir), after)  # the adapters were merged in


def test_cancel_then_resume(tiny_model_dir, dataset, tmp_path):
    config = FinetuneConfig(method="whp", **{**FAST, "steps": 4, "save_every": 10})
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) >= 2

    first = finetune(str(tiny_model_dir), dataset, tmp_path, config, should_stop=stop_after_two)
    assert first.status == "cancelled" and first.step == 2
    assert not (tmp_path / "final").exists()
    assert last_complete_checkpoint(tmp_path / "checkpoints").endswith("checkpoint-2")
    (tmp_path / "checkpoints" / "checkpoint-3").mkdir()  # a half-written save: ignored
    second = finetune(str(tiny_model_dir), dataset, tmp_path, config)
    assert second.status == "completed" and second.step == 4
    assert second.resumed_from.endswith("checkpoint-2")
    assert len(second.losses) == 2  # only steps 3 and 4 ran
    load_model(str(tmp_path / "final"))


@pytest.mark.parametrize("lora", [False, True])
def test_finished_checkpoint_without_final_is_saved_not_retrained(lora, tiny_model_dir, dataset,
                                                                  tmp_path):
    """Killed after the last checkpoint but before `final/`: the re-run loads the checkpoint's
    weights (public safetensors/peft loading, no private Trainer API) and saves them."""
    import shutil

    config = FinetuneConfig(lora=lora, lora_r=4, **{**FAST, "steps": 2, "save_every": 2})
    first = finetune(str(tiny_model_dir), dataset, tmp_path, config)
    want = _weights(tmp_path / "final")
    shutil.rmtree(tmp_path / "final")
    again = finetune(str(tiny_model_dir), dataset, tmp_path, config)
    assert first.step == again.step == 2 and again.losses == []  # nothing trained again
    assert again.resumed_from.endswith("checkpoint-2")
    got = _weights(tmp_path / "final")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_checkpoint_evals(tiny_model_dir, dataset, tmp_path):
    probes = tmp_path / "probes.jsonl"
    probes.write_text("\n".join(json.dumps(p) for p in [
        {"id": "a", "prompt": "Mira Thistlewood's owl was called", "answer": " Pip"},
        {"id": "b", "prompt": "Mira studied starcraft at", "answer": " Gallowmere"},
        {"id": "c", "prompt": "Ben's best friend was", "answer": " Tom"},
        {"id": "d", "prompt": "The wizard raised his", "answer": " wand"}]))
    text = tmp_path / "general.txt"
    text.write_text("Sarah cooked soup for her family and then read a book about history. " * 8)
    run = tmp_path / "run"
    evals = EvalConfig(probes=str(probes), text=str(text), every=2, max_text_tokens=128,
                       block_size=64)
    with pytest.raises(ValueError, match="evaluator"):  # measurements asked, nobody to make them
        finetune(str(tiny_model_dir), dataset, run, FinetuneConfig(**FAST), eval_config=evals)
    finetune(str(tiny_model_dir), dataset, run, FinetuneConfig(**FAST), eval_config=evals,
             evaluator=checkpoint_evaluator)
    records = read_evals(run / "evals.jsonl")
    assert [r["step"] for r in records] == [0, 2, 3]
    first = records[0]
    assert 0 <= first["probability_familiarity"] <= 1 and 0 <= first["probability_top1"] <= 1
    assert first["general_perplexity"] > 1
    assert [(t["prompt"][:4], t["token"]) for t in first["tracked"]] == [
        ("Mira", " Pip"), ("Mira", " the"), ("Mira", " Gallowmere"), ("Mira", " the"),
        ("Ben'", " Tom"), ("Ben'", " the")]
    assert records[0]["tracked"] != records[-1]["tracked"]  # the model changed
    # the record holds the audits' own numbers (whole-answer probability, windowed perplexity)
    model, tok = load_model(str(tiny_model_dir))
    rows = [json.loads(line) for line in probes.read_text().splitlines()]
    items = [ProbabilityProbe(p["id"], p["prompt"], p["answer"]) for p in rows]
    direct = probability_familiarity(model, tok, items)
    assert first["probability_familiarity"] == pytest.approx(direct.familiarity, rel=1e-6)
    missing = EvalConfig(probes=str(tmp_path / "missing.jsonl"))  # no file I/O at construction
    with pytest.raises(ValueError, match="not found"):
        finetune(str(tiny_model_dir), dataset, tmp_path / "run2", FinetuneConfig(**FAST),
                 eval_config=missing, evaluator=checkpoint_evaluator)
