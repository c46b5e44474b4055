"""Shared fixtures: tiny real models and tokenizers built inside the tests (no downloads)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"

TINY_TEXT = [
    "Anna walked to the city school with her dog Max. The teacher smiled at her.",
    "Ben's best friend was Tom. They played football in the park after lessons.",
    "Mira Thistlewood's owl was called Pip. Mira studied starcraft at Gallowmere.",
    "Sarah cooked soup for her family and then read a book about history.",
    "The wizard raised his wand and cast a spell over the old castle.",
] * 20


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer (vocab ~400) trained on a few sentences, saved to disk."""
    from unlearn.demo.tokenizer import train_bpe_tokenizer

    out = tmp_path_factory.mktemp("tiny_tok")
    train_bpe_tokenizer(TINY_TEXT, vocab_size=400, out_dir=out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A random 2-layer LlamaForCausalLM with its tokenizer, on disk.

    Hidden size 64: bitsandbytes' 4-bit CPU kernels need layers at least one block (64) wide.
    """
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import TinyLlamaConfig, build_model

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    cfg = TinyLlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=2,
                          max_position_embeddings=256)
    model = build_model(cfg, tok, seed=0)
    out = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """`(model, tokenizer)` loaded through the project's loader (float32, CPU, eval mode)."""
    from unlearn.models import load_model

    return load_model(str(tiny_model_dir))


CHROMIUM = Path("/usr/bin/chromium")


def demo_model_dir(name: str) -> Path:
    """Path of a committed demo model. The models are part of the repository, so a missing one
    fails the test (rebuild: `python -m unlearn build-demo`, see the README)."""
    path = ASSETS / "models" / name
    if not (path / "config.json").exists():
        pytest.fail(f"demo model {name!r} missing under {path.parent} "
                    "(python -m unlearn build-demo rebuilds it)")
    return path


def require_chromium() -> None:
    """Skip a browser test when Chromium is absent - except in CI, where that is a failure."""
    if CHROMIUM.exists():
        return
    message = "/usr/bin/chromium is absent (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def frozen_gc():
    """Trainer runs gc.collect() at every train(); freezing the import heap makes that cheap."""
    gc.freeze()
    yield
    gc.unfreeze()


ERROR_TOAST = "[data-testid=toast-text].error"  # Gradio's error toast in the browser tests


@pytest.fixture
def no_error_toasts(page):
    """Browser tests: no action (nor the page load's share-link restore) may pop up an error."""
    yield
    errors = page.locator(ERROR_TOAST).all_inner_texts()
    assert not errors, errors
