"""Token blocks and the reinforced model (trained further on the target text)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_TEXT

from unlearn.data import lm_dataset, pair_with_retain, token_blocks, truncate_text
from unlearn.models import load_model, load_tokenizer
from unlearn.reinforce import Cancelled, ReinforceConfig, reinforce

TEXT = "\n\n".join(TINY_TEXT[:10])


def test_token_blocks_start_with_bos_and_cover_the_text(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    blocks = token_blocks(tok, TEXT, 16, min_block=1)
    assert all(b[0] == tok.bos_token_id and len(b) <= 16 for b in blocks)
    assert [t for b in blocks for t in b[1:]] == ids
    ds = lm_dataset(tok, TEXT, 16)
    row = ds[len(ds) - 1]
    assert len(row["input_ids"]) == 16 and len(row["labels"]) == 16
    pad = row["attention_mask"].count(0)
    assert row["labels"][16 - pad:] == [-100] * pad
    with pytest.raises(ValueError, match="block_size"):
        token_blocks(tok, TEXT, 1)


def test_truncate_text_and_retain_pairing(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    short = truncate_text(tok, TEXT, 30)
    assert TEXT.startswith(short.rstrip()) and len(tok(short)["input_ids"]) <= 31
    assert truncate_text(tok, TEXT, None) == TEXT
    forget = lm_dataset(tok, TEXT, 16)
    retain = lm_dataset(tok, "Sarah cooked soup. " * 10, 16)
    paired = pair_with_retain(forget, retain)
    assert len(paired) == len(forget)
    assert paired[len(retain)]["retain_input_ids"] == retain[0]["input_ids"]


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        ReinforceConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        ReinforceConfig(lr=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        ReinforceConfig(batch_size=0)


def _target_nll(model, tok) -> float:
    ds = lm_dataset(tok, TEXT, 64)
    with torch.inference_mode():
        ids = torch.tensor(ds["input_ids"])
        return float(model(input_ids=ids, attention_mask=torch.tensor(ds["attention_mask"]),
                           labels=torch.tensor(ds["labels"])).loss)


def test_reinforce_lowers_target_loss(tiny_model_dir, tmp_path):
    events = []
    info = reinforce(str(tiny_model_dir), TEXT, tmp_path / "reinforced",
                     ReinforceConfig(epochs=2, lr=3e-3, block_size=64, batch_size=4),
                     on_progress=events.append)
    assert info["steps"] == len(events) > 0
    assert events[-1]["stage"] == "reinforce" and events[-1]["step"] == events[-1]["total"]
    base, tok = load_model(str(tiny_model_dir))
    reinf, _ = load_model(str(tmp_path / "reinforced"))
    assert _target_nll(reinf, tok) < _target_nll(base, tok) - 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reinforced"]  # no work dirs left


def test_reinforce_cancel_leaves_no_model(tiny_model_dir, tmp_path):
    with pytest.raises(Cancelled):
        reinforce(str(tiny_model_dir), TEXT, tmp_path / "reinforced",
                  ReinforceConfig(epochs=3, block_size=64, batch_size=4),
                  should_stop=lambda: True)
    assert not (tmp_path / "reinforced").exists()
    assert list(tmp_path.iterdir()) == []
