"""scripts/memory_estimate.py: parameter counts and weight bytes from a config match real models."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT, demo_model_dir

from unlearn.models import load_model, parameter_count

sys.path.insert(0, str(ROOT / "scripts"))
import memory_estimate as me  # noqa: E402


def test_llama2_7b_count_is_the_published_one():
    assert me.counts(me.LLAMA2_7B, 16).total == 6_738_415_616  # Llama-2-7b-hf safetensors index


@pytest.mark.parametrize(("quantization", "precision"),
                         [("none", "bf16"), ("8bit", "8bit"), ("4bit", "4bit")])
def test_weight_bytes_match_the_loaded_demo_model(quantization, precision):
    path = demo_model_dir("baseline")
    c = me.counts(json.loads((path / "config.json").read_text()), 16)
    model, _ = load_model(str(path), dtype="bfloat16", quantization=quantization)
    assert c.total == model.num_parameters() == parameter_count(str(path))
    footprint = model.get_memory_footprint()  # leaves out the quantization scales
    assert footprint * 0.99 <= me.weight_bytes(c, precision) <= footprint * 1.03


def test_shared_base_saves_one_base_and_keeps_two_caches():
    rows = {r["precision"]: r for r in me.table(me.LLAMA2_7B, 4096, 16)}
    bf16 = rows["bf16"]
    assert bf16["kv_gb"] == pytest.approx(4.0)  # 2 sides x 32 layers x 2 x 4096 x 4096 x 2 B
    assert bf16["two_models_gb"] - bf16["shared_base_gb"] == pytest.approx(
        bf16["weights_gb"] - me.counts(me.LLAMA2_7B, 16).lora * 4 / me.GB)
    assert rows["4bit"]["shared_base_gb"] < rows["8bit"]["shared_base_gb"] < bf16["shared_base_gb"]


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(SystemExit):
        me.main(["--config", str(bad)])
    assert "lacks intermediate_size" in capsys.readouterr().err
