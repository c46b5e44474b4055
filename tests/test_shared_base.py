"""One base for two sides: a LoRA adapter (the finetune's `lora_adapter` output) loads on the
shared base's weights and gives the logits of the merged model; the base itself is unchanged."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from conftest import TINY_TEXT

from ui.store import ModelStore
from unlearn.data import lm_dataset
from unlearn.finetune import FinetuneConfig, finetune
from unlearn.models import ModelLoadError, adapter_base, load_model, load_models, load_tokenizer
from unlearn.run_dir import ADAPTER_DIR

pytestmark = pytest.mark.usefixtures("frozen_gc")
PROMPTS = ["Once upon a time", "The"]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    """A real LoRA finetune of the tiny model that keeps its adapter next to the merged model."""
    tok = load_tokenizer(str(tiny_model_dir))
    dataset = lm_dataset(tok, "\n\n".join(TINY_TEXT[:10]), 64)
    out = tmp_path_factory.mktemp("runs") / "lora-run"
    config = FinetuneConfig(lora=True, lora_r=4, lora_adapter=True, steps=3, lr=5e-3,
                            batch_size=4, block_size=64, save_every=0)
    assert finetune(str(tiny_model_dir), dataset, out, config).status == "completed"
    return out


def _logits(model, tok) -> torch.Tensor:
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def test_adapter_names_its_base_and_loads_like_the_merged_model(run_dir, tiny_model_dir):
    adapter = run_dir / ADAPTER_DIR
    assert adapter_base(str(adapter)) == str(tiny_model_dir.resolve())
    assert adapter_base(str(tiny_model_dir)) is None  # a full model folder is no adapter
    merged, tok = load_model(str(run_dir / "final"))
    on_base, _ = load_model(str(adapter))
    base, _ = load_model(str(tiny_model_dir))
    want, got = _logits(merged, tok), _logits(on_base, tok)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert (got - _logits(base, tok)).abs().max() > 1e-3  # the adapter does change the model


def test_store_shares_the_base_and_keeps_both_sides_exact(run_dir, tiny_model_dir):
    store = ModelStore(max_models=5)
    adapter = store.get(str(run_dir / ADAPTER_DIR))  # loads its base first
    base = store.get(str(tiny_model_dir))
    assert len(store.loaded_names()) == 2
    # the same weight tensors: the base is held once
    shared = {p.data_ptr() for p in base.model.parameters()}
    frozen = [p for n, p in adapter.model.named_parameters() if "lora_" not in n]
    assert frozen and all(p.data_ptr() in shared for p in frozen)
    single = base.model.get_memory_footprint()
    assert store.footprint_gb() * 1024 ** 3 < 1.5 * single  # not two full models
    # each side gives what a separately loaded model gives
    alone_base, tok = load_model(str(tiny_model_dir))
    merged, _ = load_model(str(run_dir / "final"))
    assert torch.equal(_logits(base.model, tok), _logits(alone_base, tok))
    assert torch.allclose(_logits(adapter.model, tok), _logits(merged, tok), atol=1e-4,
                          rtol=1e-4)


def test_both_sides_generate_at_once_on_the_shared_base(run_dir, tiny_model_dir):
    models = load_models({"original": str(tiny_model_dir),
                          "unlearned": str(run_dir / ADAPTER_DIR)})
    (base, tok), (adapted, tok2) = models["original"], models["unlearned"]
    assert tok2 is tok
    ids = tok("Once upon a time", return_tensors="pt")

    def greedy(model):
        with torch.no_grad():
            return model.generate(**ids, max_new_tokens=24, min_new_tokens=24,
                                  do_sample=False)[0].tolist()

    alone = {"original": greedy(base), "unlearned": greedy(adapted)}
    assert alone["original"] != alone["unlearned"]
    together: dict[str, list[int]] = {}
    threads = [threading.Thread(target=lambda k=k, m=m: together.__setitem__(k, greedy(m)))
               for k, m in (("original", base), ("unlearned", adapted))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


def test_adapter_without_a_base_is_a_clear_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ModelLoadError, match="names no base model"):
        adapter_base(str(tmp_path))
    (tmp_path / "adapter_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable adapter config"):
        load_model(str(tmp_path))


def test_lora_adapter_needs_lora():
    with pytest.raises(ValueError, match="add lora"):
        FinetuneConfig(lora_adapter=True)


def test_finetune_tab_loads_a_lora_run_on_the_left_sides_base(run_dir, tiny_model_dir, tmp_path):
    from ui.blocks import build_ui
    from ui.config import parse_config
    from ui.testing import write_tiny_demo

    config = parse_config(["--original", str(tiny_model_dir), "--unlearned", str(tiny_model_dir),
                           "--reference", "", "--demo-dir", str(write_tiny_demo(tmp_path / "d")),
                           "--runs-dir", str(run_dir.parent)], env={})
    demo = build_ui(config)
    ctx, session = demo.whp.ctx, demo.whp.ctx.new_session()
    demo.whp.finetune.load_run(session, run_dir.name)
    assert session.sides["unlearned"] == str((run_dir / ADAPTER_DIR).resolve())
    left, right = ctx.side_models(session)
    shared = {p.data_ptr() for p in left.model.parameters()}
    assert all(p.data_ptr() in shared for n, p in right.model.named_parameters()
               if "lora_" not in n)
