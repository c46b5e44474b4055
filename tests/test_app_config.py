"""App configuration (flags, env vars, presets), model start-up fallbacks, the ZeroGPU shim."""

from __future__ import annotations

import pytest

from ui import gpu as gpu_mod
from ui.config import PRESETS, AppConfig, parse_config
from ui.store import ModelStore, start_models


def test_defaults_are_the_embedded_demo_on_cpu():
    cfg = parse_config([], env={})
    assert cfg.original == PRESETS["demo"]["original"]
    assert cfg.unlearned.endswith("assets/models/unlearned")
    assert (cfg.device, cfg.dtype, cfg.quantization) == ("cpu", "auto", "none")
    assert cfg.port is None and cfg.host == "127.0.0.1"


def test_flags_win_over_env_which_win_over_preset():
    env = {"WHP_DEVICE": "cuda:1", "WHP_ORIGINAL": "env/model", "GRADIO_SERVER_PORT": "7999",
           "GRADIO_SERVER_NAME": "0.0.0.0", "WHP_MAX_NEW_TOKENS": "12"}
    cfg = parse_config(["--original", "flag/model"], env=env)
    assert cfg.original == "flag/model" and cfg.device == "cuda:1"
    assert cfg.max_new_tokens == 12
    assert cfg.port is None  # GRADIO_SERVER_PORT is read in resolved() from os.environ


def test_gradio_env_vars_are_honoured(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    cfg = parse_config([], env={})
    assert (cfg.port, cfg.host) == (7999, "0.0.0.0")
    assert parse_config(["--port", "8001"], env={}).port == 8001


@pytest.mark.parametrize("gb, quant", [("16", "4bit"), ("80", "none")])
def test_llama2_preset_quantizes_on_small_gpus(monkeypatch, gb, quant):
    monkeypatch.setenv("WHP_GPU_MEMORY_GB", gb)
    cfg = parse_config(["--preset", "llama2-whp"], env={})
    assert cfg.original == "meta-llama/Llama-2-7b-chat-hf"
    assert cfg.unlearned == "microsoft/Llama2-7b-WhoIsHarryPotter"
    assert cfg.device == "cuda" and cfg.chat_template == "llama2"
    assert cfg.quantization == quant
    explicit = parse_config(["--preset", "llama2-whp", "--quantization", "8bit"], env={})
    assert explicit.quantization == "8bit"


def test_invalid_values_are_clear_errors():
    with pytest.raises(ValueError, match="preset"):
        AppConfig(preset="nope")
    with pytest.raises(ValueError, match="dtype"):
        AppConfig(dtype="int3")
    with pytest.raises(SystemExit):
        parse_config(["--quantization", "3bit"], env={})


def test_unreachable_hub_id_becomes_a_notice_not_a_traceback(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                        "nobody-here/no-such-model-xyz", "--reference", ""], env={})
    store = ModelStore()
    startup = start_models(cfg, store)
    text = " ".join(startup.notices)
    assert "could not be loaded" in text and "no-such-model-xyz" in text
    assert "HF_HUB_OFFLINE" in text
    # the right-hand side falls back to the original, with a visible notice
    assert startup.sides["unlearned"] == startup.sides["original"]
    assert startup.fallback == "Original"
    assert "instead of an unlearned model" in text


def test_missing_unlearned_falls_back_to_reference(tiny_model_dir, tmp_path):
    cfg = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                        str(tmp_path / "missing"), "--reference", str(tiny_model_dir)], env={})
    startup = start_models(cfg, ModelStore())
    assert startup.reference and startup.sides["unlearned"] == startup.reference
    assert startup.fallback == "Reference"
    assert any("reference model" in n for n in startup.notices)


def test_store_caches_and_evicts_unpinned(tiny_model_dir):
    store = ModelStore(max_models=1)
    a = store.get(str(tiny_model_dir), pin=True)
    assert store.get(str(tiny_model_dir)) is a
    assert store.loaded_names() == [a.name]


def _plus_one(x):
    return x + 1


def test_gpu_decorator_is_a_noop_without_spaces():
    assert not gpu_mod.HAS_SPACES
    assert gpu_mod.gpu(_plus_one) is _plus_one
    assert gpu_mod.gpu(duration=60)(_plus_one) is _plus_one
    assert gpu_mod.ENTRY_POINTS[f"{__name__}._plus_one"] is _plus_one
    gpu_mod.ENTRY_POINTS.pop(f"{__name__}._plus_one")


def test_gpu_decorator_hands_the_function_to_spaces(monkeypatch):
    seen = []

    class FakeSpaces:  # the two call forms of spaces.GPU
        @staticmethod
        def GPU(fn=None, **kwargs):  # noqa: N802 - spaces' name
            if fn is None:
                return lambda f: seen.append((f, kwargs)) or f
            seen.append((fn, {}))
            return fn

    monkeypatch.setattr(gpu_mod, "HAS_SPACES", True)
    monkeypatch.setattr(gpu_mod, "spaces", FakeSpaces)
    gpu_mod.gpu(_plus_one)
    gpu_mod.gpu(duration=120)(_plus_one)
    assert seen == [(_plus_one, {}), (_plus_one, {"duration": 120})]
    gpu_mod.ENTRY_POINTS.pop(f"{__name__}._plus_one")


def test_gpu_decorator_refuses_methods_and_closures():
    class Tab:
        def run(self):
            return 1

    with pytest.raises(TypeError, match="module-level"):
        gpu_mod.gpu(Tab.run)


def test_empty_reference_flag_means_no_reference():
    assert parse_config(["--reference", ""], env={}).reference == ""
    assert parse_config([], env={}).reference.endswith("assets/models/reference")
