"""Token blocks and the reinforced model (trained further on the target text)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_TEXT

from unlearn.data import (
    TEXT_FORMAT_FILE,
    copy_text_format,
    encode_text,
    lm_dataset,
    pair_with_retain,
    resolve_text_format,
    token_blocks,
    truncate_text,
)
from unlearn.models import load_model, load_tokenizer
from unlearn.reinforce import ReinforceConfig, reinforce
from unlearn.runtime import Cancelled

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


def test_paragraph_documents_format(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    text = "Anna walked home.\n\nThe owl flew.\n\n\nBen slept.\n"
    bos, eos = tok.bos_token_id, tok.eos_token_id
    ids = encode_text(tok, text, "paragraphs")
    para = [tok(p, add_special_tokens=False)["input_ids"]
            for p in ("Anna walked home.", "The owl flew.", "Ben slept.")]
    assert ids == para[0] + [eos, bos] + para[1] + [eos, bos] + para[2] + [eos]
    newline = set(tok("\n", add_special_tokens=False)["input_ids"])
    assert not newline & set(ids)
    assert encode_text(tok, text, "text") == tok(text, add_special_tokens=False)["input_ids"]
    # a block that starts on a document's own BOS gets no second one
    cut = len(para[0]) + 2  # block 2 starts right at the second paragraph's BOS
    blocks = token_blocks(tok, text, cut, min_block=2, text_format="paragraphs")
    assert all(b[0] == bos and b[1] != bos for b in blocks)
    assert len(lm_dataset(tok, text, 64, "paragraphs")) == 1
    with pytest.raises(ValueError, match="text_format"):
        encode_text(tok, text, "lines")


def test_text_format_auto_reads_the_model_folder(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    assert resolve_text_format("auto", model) == "text"
    assert resolve_text_format("paragraphs", model) == "paragraphs"
    (model / TEXT_FORMAT_FILE).write_text('{"text_format": "paragraphs"}')
    assert resolve_text_format("auto", model) == "paragraphs"
    assert resolve_text_format("text", model) == "text"  # an explicit choice wins
    derived = tmp_path / "derived"
    derived.mkdir()
    copy_text_format(model, derived)
    assert resolve_text_format("auto", derived) == "paragraphs"
    (model / TEXT_FORMAT_FILE).write_text('{"text_format": "lines"}')
    with pytest.raises(ValueError, match="lines"):
        resolve_text_format("auto", model)
    with pytest.raises(ValueError, match="text_format"):
        resolve_text_format("both", model)


def test_demo_models_declare_paragraph_documents():
    from conftest import ROOT

    for name in ("baseline", "reference", "unlearned"):
        assert resolve_text_format("auto", ROOT / "assets" / "models" / name) == "paragraphs"


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
    assert events[-1].stage == "reinforce" and events[-1].step == events[-1].total
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
