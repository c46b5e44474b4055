"""One way to load a causal LM and its tokenizer: local path or hub id, device, dtype, quant.

A peft LoRA adapter folder (`adapter_config.json`, e.g. the finetune's `--lora-adapter` output)
loads as its base with the adapter added; `load_models` and the app's model store load a base
shared by the adapters on it only once (`with_adapter`).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

QUANTIZATIONS = ("none", "8bit", "4bit")
DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16,
          "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why in words a user can act on."""


@dataclass
class LoadConfig:
    """How to load a model."""

    name_or_path: str  # local folder (save_pretrained layout) or a hub id like "org/name"
    device: str = "cpu"  # "cpu", "cuda", "cuda:0"...; never guessed from torch.cuda
    dtype: str = "auto"  # "auto" (checkpoint dtype), "float32", "bfloat16", "float16"
    quantization: str = "none"  # "none", "8bit", "4bit" (bitsandbytes)

    def __post_init__(self) -> None:
        if not self.name_or_path or not str(self.name_or_path).strip():
            raise ValueError("model path or hub id is empty")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, "
                             f"got {self.quantization!r}")
        if self.device.split(":")[0] not in ("cpu", "cuda", "mps", "xpu"):
            raise ValueError(f"unknown device {self.device!r}")


def _looks_local(name: str) -> bool:
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~"))


def quantization_config(quantization: str, compute_dtype: torch.dtype = torch.float32):
    """A `BitsAndBytesConfig` for "8bit" / "4bit" (NF4, double quant), or None."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_tokenizer(name_or_path: str):
    """Load a tokenizer; give it a pad token (EOS) when it has none."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
    except OSError as exc:
        raise ModelLoadError(_explain(name_or_path, exc)) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _explain(name: str, exc: Exception) -> str:
    if _looks_local(name):
        return f"cannot load model from local path {name!r}: {exc}"
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = ("HF_HUB_OFFLINE=1 is set and the model is not in the local cache"
            if offline else "the hub cannot be reached or the id is wrong/gated")
    return (f"cannot load hub model {name!r}: {hint}. Download it first "
            f"(huggingface-cli download {name}) or pass a local path. ({type(exc).__name__})")


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(name_or_path: str) -> str | None:
    """The base model of a peft adapter folder (its `adapter_config.json`'s
    `base_model_name_or_path`, a relative path taken from the adapter folder), or None when
    `name_or_path` is not an adapter folder. Raises `ModelLoadError` on an unreadable config."""
    folder = Path(str(name_or_path)).expanduser()
    path = folder / ADAPTER_CONFIG
    if not path.is_file():
        return None
    try:
        base = json.loads(path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"unreadable adapter config {path}: {exc}") from exc
    if not base:
        raise ModelLoadError(f"{path} names no base model (base_model_name_or_path)")
    if not Path(base).expanduser().is_absolute() and (folder / base).exists():
        return str((folder / base).resolve())
    return str(base)


def with_adapter(base_model, adapter_path: str):
    """A model that shares every weight of `base_model` and adds the LoRA adapter at
    `adapter_path` (peft). The module tree is copied with the base's parameters and buffers
    kept as the same tensors, so the only new memory is the adapter's; `base_model` itself is
    left untouched, so both can run at once (the app's two panes stream in two threads)."""
    from peft import PeftModel

    shared = {id(t): t for t in itertools.chain(base_model.parameters(), base_model.buffers())}
    clone = copy.deepcopy(base_model, shared)
    try:
        peft_model = PeftModel.from_pretrained(clone, adapter_path, is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load adapter {adapter_path!r} on its base: {exc}") from exc
    model = peft_model.get_base_model()  # the copy, with LoRA layers in its modules
    model.eval()
    return model


def load_model(name_or_path: str | LoadConfig, device: str = "cpu", dtype: str = "auto",
               quantization: str = "none"):
    """Load `(model, tokenizer)` in eval mode.

    `name_or_path` is a local `save_pretrained` folder or a hub id. On any device but the CPU
    the weights are loaded straight onto it with `device_map` (shard by shard, never first
    materialised whole in CPU memory); quantized models always get a `device_map`. Raises
    `ModelLoadError` with an actionable message when the files cannot be found or fetched.
    """
    from transformers import AutoModelForCausalLM

    cfg = (name_or_path if isinstance(name_or_path, LoadConfig)
           else LoadConfig(str(name_or_path), device, dtype, quantization))
    if (base := adapter_base(cfg.name_or_path)) is not None:
        model, tok = load_model(LoadConfig(base, cfg.device, cfg.dtype, cfg.quantization))
        return with_adapter(model, cfg.name_or_path), tok
    tok = load_tokenizer(cfg.name_or_path)
    torch_dtype = DTYPES[cfg.dtype]
    kwargs: dict = {"dtype": torch_dtype}
    qconf = quantization_config(
        cfg.quantization,
        torch.float32 if torch_dtype == "auto" else torch_dtype)
    if qconf is not None:
        kwargs["quantization_config"] = qconf
    if qconf is not None or cfg.device != "cpu":
        kwargs["device_map"] = {"": cfg.device}
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(_explain(cfg.name_or_path, exc)) from exc
    if "device_map" not in kwargs:
        model.to(cfg.device)
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def parameter_count(name_or_path: str) -> int:
    """Parameters of a model from its config alone (`unlearn.memory.counts`: exact for the
    Llama layout; nothing is built, so it is safe while another thread loads models); an
    adapter folder counts its base. Raises `ModelLoadError` when the config cannot be read or
    lacks the Llama-layout sizes."""
    from transformers import AutoConfig

    from unlearn.memory import counts

    name = adapter_base(name_or_path) or str(name_or_path)
    try:
        config = AutoConfig.from_pretrained(name)
        return counts(config.to_dict(), 1).total
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_explain(name, exc)) from exc
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(f"{name}: config has no Llama-layout size {exc}") from exc


def load_models(paths: dict[str, str], device: str = "cpu", dtype: str = "auto",
                quantization: str = "none") -> dict[str, tuple]:
    """`{name: (model, tokenizer)}` for `{name: path}`; a base used by several entries (itself
    and/or adapters on it) is loaded once and shared (`with_adapter`)."""
    bases: dict[str, tuple] = {}

    def base(path: str) -> tuple:
        key = model_key(path)
        if key not in bases:
            bases[key] = load_model(path, device=device, dtype=dtype, quantization=quantization)
        return bases[key]

    out = {}
    for name, path in paths.items():
        under = adapter_base(path)
        if under is None:
            out[name] = base(path)
        else:
            model, tok = base(under)
            out[name] = (with_adapter(model, path), tok)
    return out


def model_key(name: str) -> str:
    """Local folders as resolved absolute paths (one entry per folder); hub ids as they are."""
    path = Path(str(name).strip()).expanduser()
    return str(path.resolve()) if path.exists() else str(name).strip()
