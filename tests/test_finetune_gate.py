"""The Finetune tab's gate: QLoRA for big models, a memory estimate checked first, ZeroGPU off."""

from __future__ import annotations

import pytest

from ui.finetune_gate import FinetunePlan, finetune_refusal, plan_finetune, stage_memory_gb

GIB = 1024 ** 3


def test_big_models_on_a_gpu_get_qlora_by_default():
    plan = plan_finetune(6_738_415_616, "cuda", lora=False, quantization="none")
    assert (plan.lora, plan.quantization) == (True, "4bit") and "6.7B" in plan.note
    assert plan_finetune(6_738_415_616, "cuda", True, "4bit").note == ""
    assert plan_finetune(6_738_415_616, "cpu", False, "none") == FinetunePlan(False, "none")
    assert plan_finetune(3_900_000, "cuda", False, "4bit") == FinetunePlan(False, "none")
    assert plan_finetune(3_900_000, "cuda", True, "8bit") == FinetunePlan(True, "8bit")


def test_stage_memory_by_hand():
    # 2**30 parameters in float16, batch 1 x block 1, hidden = layers = vocab = 1:
    # activations 1 * (18*1*1 + 2*1) * 2 = 40 bytes; label logits 1 * 2 * 1 * 4 = 8 bytes
    qlora = stage_memory_gb(GIB, "float16", FinetunePlan(True, "4bit"), 1, 1, 1, 1, 1)
    assert qlora["reinforce"] == pytest.approx(12 + 40 / GIB)  # weights + grads + Adam: 2+2+8
    assert qlora["labels"] == pytest.approx(4 + 8 / GIB)  # two fp16 models
    assert qlora["finetune"] == pytest.approx(0.5 + 0.01 * 16 + 40 / GIB)  # 4-bit + adapters
    full = stage_memory_gb(GIB, "float16", FinetunePlan(False, "none"), 1, 1, 1, 1, 1)
    assert full["finetune"] == pytest.approx(2 + 2 + 8 + 40 / GIB)


def test_a_7b_run_is_refused_on_a_24gb_gpu_with_the_numbers(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("text")
    plan = plan_finetune(6_738_415_616, "cuda", False, "none")
    est = stage_memory_gb(6_738_415_616, "float16", plan, 8, 128, 4096, 32, 32000)
    assert est["finetune"] < 12 < est["reinforce"]  # QLoRA fits, the reinforce copy does not
    reason = finetune_refusal("cuda", target, est, free_gb=24 - 7.6)
    assert reason and "reinforce stage needs about" in reason and "16.4 GB are free" in reason
    assert finetune_refusal("cuda", target, est, free_gb=None).startswith("GPU memory is unknown")
    small = stage_memory_gb(3_900_000, "float32", FinetunePlan(False, "none"), 8, 128, 256, 4,
                            4096)
    assert finetune_refusal("cuda", target, small, free_gb=10) is None
    assert finetune_refusal("cpu", target, None, None) is None


def test_zerogpu_and_a_missing_target_text_are_refused(tmp_path, monkeypatch):
    missing = tmp_path / "target.txt"
    assert "No target text" in finetune_refusal("cpu", missing, None, None)
    missing.write_text("text")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert "disabled on ZeroGPU" in finetune_refusal("cuda", missing, None, None)
    assert finetune_refusal("cpu", missing, None, None) is None  # a CPU run needs no GPU slot
