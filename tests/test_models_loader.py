"""The one model loader: local paths, dtype, quantization, and clear errors."""

from __future__ import annotations

import pytest
import torch

from unlearn.models import LoadConfig, ModelLoadError, load_model


def test_loads_local_model_in_eval_mode_with_pad_token(tiny_model_dir):
    model, tok = load_model(str(tiny_model_dir))
    assert not model.training
    assert tok.pad_token is not None and tok.bos_token == "<s>"
    assert next(model.parameters()).dtype == torch.float32
    ids = tok("Anna walked", return_tensors="pt").input_ids
    assert ids[0, 0].item() == tok.bos_token_id
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))


def test_dtype_is_applied(tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("quantization, layer_class", [("4bit", "Linear4bit"),
                                                      ("8bit", "Linear8bitLt")])
def test_quantized_loading_on_cpu(tiny_model_dir, quantization, layer_class):
    full, tok = load_model(str(tiny_model_dir))
    model, _ = load_model(str(tiny_model_dir), quantization=quantization)
    classes = {type(m).__name__ for m in model.modules()}
    assert layer_class in classes
    ids = tok("Ben's best friend was", return_tensors="pt").input_ids
    with torch.inference_mode():
        q = torch.softmax(model(ids).logits[0, -1].float(), -1)
        f = torch.softmax(full(ids).logits[0, -1].float(), -1)
    # Quantization perturbs the model but keeps it a valid, close distribution.
    assert torch.isfinite(q).all()
    assert (q - f).abs().sum().item() < 0.5


def test_missing_local_path_gives_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="local path"):
        load_model(str(tmp_path / "nope"))


def test_unreachable_hub_id_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="microsoft/Llama2-7b-WhoIsHarryPotter"):
        load_model("microsoft/Llama2-7b-WhoIsHarryPotter")


@pytest.mark.parametrize("kwargs, message", [
    ({"name_or_path": " "}, "empty"),
    ({"name_or_path": "x", "dtype": "float8"}, "dtype"),
    ({"name_or_path": "x", "quantization": "3bit"}, "quantization"),
    ({"name_or_path": "x", "device": "gpu"}, "device"),
])
def test_bad_load_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoadConfig(**kwargs)


def test_every_non_cpu_load_gets_a_device_map(tiny_model_dir, monkeypatch):
    """No GPU here: record what `from_pretrained` is asked, load the real model on the CPU."""
    from transformers import AutoModelForCausalLM

    real = AutoModelForCausalLM.from_pretrained
    seen = []

    def recording(name, **kwargs):
        seen.append(dict(kwargs))
        if "device_map" in kwargs:
            kwargs["device_map"] = {"": "cpu"}
        return real(name, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recording)
    load_model(str(tiny_model_dir), device="cuda:1", dtype="float16")
    load_model(str(tiny_model_dir))
    assert seen[0]["device_map"] == {"": "cuda:1"}  # weights go straight to the GPU
    assert "device_map" not in seen[1]  # CPU loads stay as they were
