"""Labels on a small demo text equal the ones the code produced before the core was
consolidated (commit eec04bc), and the rule-2 fix shows where it acts.

`tests/data/labels_eec04bc.json` holds, for the first 12 paragraphs of `assets/demo/target.txt`
(blocks of 128 tokens, paragraphs format, alphas 5 and 2, logprob space, seed 0), the labels and
the rule-2 forbidden lists computed by the code at eec04bc. The baseline is the committed demo
baseline; the reinforced model is that baseline with a seeded random raise of its lm_head (a real
model, fixed by the seed; training one here would take minutes). The file was written by running
the same computation as `_labels_now` with `PYTHONPATH` pointing at `git archive eec04bc unlearn`;
it was regenerated that way on the v2 demo assets of issue 9 and again on the v3 assets.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import torch

from tests.conftest import demo_model_dir
from unlearn.anchors import choose_translations, filter_redundant, load_anchors
from unlearn.data import encode_text
from unlearn.label_runner import LabelConfig, compute_labels, split_blocks
from unlearn.labels import forbidden_mask_from_lists, generic_labels
from unlearn.models import load_model
from unlearn.translate import AnchorMatcher, get_matcher, translate_block

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "data" / "labels_eec04bc.json").read_text())


@pytest.fixture(scope="module")
def demo():
    base, tok = load_model(str(demo_model_dir("baseline")))
    reinforced = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        w = reinforced.lm_head.weight
        w.add_(0.05 * torch.randn(w.shape, generator=gen))
    paragraphs = [p for p in (ROOT / "assets/demo/target.txt").read_text(encoding="utf-8")
                  .split("\n\n") if p.strip()][:GOLDEN["paragraphs"]]
    anchors, _ = filter_redundant(load_anchors(ROOT / "assets/demo/anchors.json"))
    return base, reinforced, tok, "\n\n".join(paragraphs) + "\n", anchors


def _config() -> LabelConfig:
    return LabelConfig(alphas=tuple(GOLDEN["alphas"]), block_size=GOLDEN["block_size"],
                       batch_size=4, text_format=GOLDEN["text_format"])


def test_labels_bit_identical_to_eec04bc_except_where_rule2_lifted_a_ban(demo, tmp_path):
    """Labels equal eec04bc's everywhere except where eec04bc forbade the very token that is the
    label now (the rule-2 fix: a word piece such as " A" of "Ambrin" is no longer banned). On
    the v3 assets that happens at 3 positions per alpha: the " A" of the "Q: ...? A: ..."
    register, which eec04bc pushed to another token."""
    base, reinforced, tok, text, anchors = demo
    ds = compute_labels(base, reinforced, tok, text, anchors, _config(), tmp_path / "labels")
    for column in ("labels_alpha_5", "labels_alpha_2"):
        now = [list(row) for row in ds[column]]
        assert len(now) == len(GOLDEN[column])
        changed = []
        for b, (row, before) in enumerate(zip(now, GOLDEN[column], strict=True)):
            for i, (label, old) in enumerate(zip(row, before, strict=True)):
                if label != old:
                    changed.append(tok.decode([label]))
                    assert label in GOLDEN["forbidden"][b][i - 1], (column, b, i)
        assert changed == [" A"] * 3, (column, changed)
    # the two alphas disagree somewhere, so the comparison covers Eq. 1, not only the masks
    assert GOLDEN["labels_alpha_5"] != GOLDEN["labels_alpha_2"]


def test_rule2_fix_only_narrows_the_forbidden_sets_here(demo):
    """On this text the fix lifts the ban on word pieces at most positions; a label moves at
    only three of them (the test above): elsewhere the pieces were not the best guess."""
    _, _, tok, text, anchors = demo
    matcher = get_matcher(tok, anchors)
    ids = encode_text(tok, text, GOLDEN["text_format"])
    narrowed = positions = 0
    for k, (a, b) in enumerate(split_blocks(ids, GOLDEN["block_size"] - 1, matcher)):
        block = [tok.bos_token_id] + ids[a:b]
        tr = translate_block(block, tok, matcher,
                             choose_translations(matcher.anchors, random.Random(f"0:{k}")))
        for now, before in zip(tr.forbidden, GOLDEN["forbidden"][k], strict=True):
            assert set(now) <= set(before)
            narrowed += set(now) != set(before)
            positions += bool(before)
    assert (narrowed, positions) == (788, 1007)  # on the v3 demo assets (issue 9)


def test_rule2_fix_changes_a_label_where_a_piece_is_the_best_guess():
    """Where the baseline's best next token is the piece " Lu" (of "Lucy"), the label was pushed
    away from it before the fix (the plural "Lukes" forbade " Lu") and is " Lu" now."""
    from transformers import AutoTokenizer

    from unlearn.anchors import AnchorDictionary

    tok = AutoTokenizer.from_pretrained(ROOT / "assets" / "models" / "tokenizer")
    matcher = AnchorMatcher(tok, AnchorDictionary({"Harry": ["Luke"]}))
    ids = tok("Harry met Lucy")["input_ids"]
    tr = translate_block(ids, tok, matcher)
    piece = tok.convert_tokens_to_ids("ĠLu")
    v_b = torch.zeros(len(ids), len(tok))
    v_b[:, piece] = 5.0  # the baseline's best guess everywhere: " Lu"
    mask = forbidden_mask_from_lists(tr.forbidden, len(tok))
    labels = generic_labels(v_b, v_b.clone(), torch.tensor(tr.mapping), [5.0],
                            forbidden_mask=mask, space="logprob")[5.0]
    assert labels[-1] == piece  # the label of " Lucy", predicted at " met": " Lu" is allowed
    before = mask.clone()
    before[-2, piece] = True  # what eec04bc forbade there (from the translation on)
    old = generic_labels(v_b, v_b.clone(), torch.tensor(tr.mapping), [5.0],
                         forbidden_mask=before, space="logprob")[5.0]
    assert old[-1] != piece
