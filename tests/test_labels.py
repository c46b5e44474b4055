"""Eq. 1 on hand-written tensors, the label shift convention, and the resumable label runner."""

from __future__ import annotations

import copy
import json
import random

import pytest
import torch

from unlearn.anchors import AnchorDictionary, choose_translations
from unlearn.label_runner import (
    LabelConfig,
    compute_labels,
    split_blocks,
)
from unlearn.label_store import label_column, labels_complete, load_labels, select_alpha
from unlearn.labels import (
    DEFAULT_SPACE,
    apply_forbidden,
    forbidden_mask_from_lists,
    generic_labels,
    generic_logits,
    reindex,
)
from unlearn.runtime import Cancelled
from unlearn.translate import AnchorMatcher, translate_block

# ----------------------------------------------------------------------------- Eq. 1

LOGIT = "logit"  # the hand cases below are worked out on raw logits


def test_generic_logits_exact():
    v_b = torch.tensor([1.0, 2.0, 3.0, 0.0])
    v_r = torch.tensor([1.0, 4.0, 2.0, -1.0])  # raised only token 1 (by 2)
    assert torch.equal(generic_logits(v_b, v_r, 5.0, LOGIT), torch.tensor([1.0, -8.0, 3.0, 0.0]))
    assert torch.equal(generic_logits(v_b, v_r, 2.5, LOGIT), torch.tensor([1.0, -3.0, 3.0, 0.0]))
    assert torch.equal(generic_logits(v_b, v_r, 0.0, space=LOGIT), v_b)
    lower = torch.tensor([0.0, 1.0, 2.0, -5.0])  # reinforced <= baseline everywhere: unchanged
    assert torch.equal(generic_logits(v_b, lower, 10.0, space=LOGIT), v_b)
    batched = generic_logits(v_b.expand(2, 3, 4), v_r.expand(2, 3, 4), 5.0, space=LOGIT)
    assert batched.shape == (2, 3, 4) and batched.dtype == torch.float32
    half = generic_logits(v_b.half(), v_r.half(), 5.0, space=LOGIT)  # upcast to float32
    assert half.dtype == torch.float32


def _hand_case():
    # T = 4 positions, V = 4 tokens
    v_b = torch.tensor([[0.0, 3.0, 1.0, 0.0],    # t0: reinforced == baseline -> argmax 1
                        [0.0, 3.0, 2.0, 0.0],    # t1: reinforced raises token 1 by 1
                        [5.0, 0.0, 0.0, 0.0],    # t2: masked (mapping -1)
                        [0.0, 0.0, 0.0, 9.0]])   # t3: last position predicts past the block
    v_r = torch.tensor([[0.0, 3.0, 1.0, 0.0],
                        [0.0, 4.0, 2.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0]])
    mapping = torch.tensor([0, 1, -1, 2])
    return v_b, v_r, mapping


def test_generic_labels_several_alphas_shift_and_mask():
    v_b, v_r, mapping = _hand_case()
    out = generic_labels(v_b, v_r, mapping, [5.0, 0.5, 0.0], space=LOGIT)
    # labels[0] = -100; labels[t] = argmax Eq.1 at t-1; -100 where mapping[t-1] == -1
    assert out[5.0].tolist() == [-100, 1, 2, -100]  # t1: 3 - 5*1 = -2 < 2 -> token 2
    assert out[0.5].tolist() == [-100, 1, 1, -100]  # t1: 3 - 0.5 = 2.5 > 2 -> token 1
    assert out[0.0].tolist() == [-100, 1, 1, -100]  # alpha 0 = baseline argmax
    assert out[5.0].dtype == torch.long
    batched = generic_labels(v_b.expand(3, 4, 4), v_r.expand(3, 4, 4), mapping.expand(3, 4), [5.0])
    assert batched[5.0].tolist() == [[-100, 1, 2, -100]] * 3


def test_reinforced_lower_keeps_baseline_argmax():
    v_b = torch.tensor([[1.0, 4.0, 2.0], [0.0, 0.0, 0.0]])
    v_r = torch.tensor([[1.0, 0.0, -3.0], [0.0, 0.0, 0.0]])
    assert generic_labels(v_b, v_r, torch.tensor([0, 1]), [10.0])[10.0].tolist() == [-100, 1]


def test_forbidden_mask_sets_row_mean():
    v = torch.tensor([[0.0, 4.0, 3.0, 1.0], [1.0, 1.0, 1.0, 5.0]])
    mask = forbidden_mask_from_lists([[1], []], 4)
    assert torch.equal(apply_forbidden(v, mask), torch.tensor([[0.0, 2.0, 3.0, 1.0],
                                                               [1.0, 1.0, 1.0, 5.0]]))
    assert mask.tolist() == [[False, True, False, False], [False] * 4]
    v_b = torch.tensor([[0.0, 4.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    mapping = torch.tensor([0, 1])
    assert generic_labels(v_b, v_b, mapping, [5.0], space=LOGIT)[5.0].tolist() == [-100, 1]
    banned = generic_labels(v_b, v_b, mapping, [5.0], forbidden_mask=mask, space=LOGIT)
    assert banned[5.0].tolist() == [-100, 2]
    # a forbidden token that the reinforced model raised is pushed further down by Eq. 1
    v_r = torch.tensor([[0.0, 4.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    pushed = generic_logits(apply_forbidden(v_b, mask), v_r, 1.0, space=LOGIT)
    assert pushed[0].tolist() == [0.0, 0.0, 3.0, 1.0]
    assert forbidden_mask_from_lists([[7]], 4).sum() == 0  # ids beyond the vocabulary ignored


def test_logprob_space_is_shift_invariant_and_default_in_runner():
    v_b = torch.tensor([[3.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    v_r = torch.tensor([[5.0, 1.9, -3.0], [0.0, 0.0, 0.0]])  # raised token 0, lowered the rest
    lifted = v_r + 4.0  # the reinforced model's rows moved up as a whole: same distributions
    mapping = torch.tensor([0, 1])
    for rows in (v_r, lifted):
        assert generic_labels(v_b, rows, mapping, [5.0], space="logprob")[5.0].tolist() == [-100, 1]
    assert generic_labels(v_b, v_r, mapping, [5.0], space="logit")[5.0].tolist() == [-100, 1]
    # on raw logits the lift makes ReLU fire on every token: the label becomes the token the
    # reinforced model made least likely
    assert generic_labels(v_b, lifted, mapping, [5.0], space="logit")[5.0].tolist() == [-100, 2]
    assert LabelConfig().space == "logprob" == DEFAULT_SPACE
    assert generic_labels(v_b, lifted, mapping, [5.0])[5.0].tolist() == [-100, 1]  # default
    with pytest.raises(ValueError, match="space"):
        LabelConfig(space="softmax")
    with pytest.raises(ValueError, match="space"):
        generic_logits(v_b, v_r, 1.0, space="probs")


def test_reindex():
    v_t = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # T' = 3
    out = reindex(v_t, torch.tensor([2, -1, 0, 1]))  # T = 4
    assert out.tolist() == [[3.0, 3.0], [0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    batched = reindex(torch.stack([v_t, v_t + 10]), torch.tensor([[0, 2], [1, -1]]))
    assert batched.tolist() == [[[1.0, 1.0], [3.0, 3.0]], [[12.0, 12.0], [0.0, 0.0]]]
    with pytest.raises(ValueError, match="translated block has 3"):
        reindex(v_t, torch.tensor([3]))


def test_shape_errors():
    v_b, v_r, mapping = _hand_case()
    with pytest.raises(ValueError, match="differ in shape"):
        generic_labels(v_b, v_r[:2], mapping, [5.0])
    with pytest.raises(ValueError, match="mapping shape"):
        generic_labels(v_b, v_r, mapping[:3], [5.0])
    with pytest.raises(ValueError, match="at least one alpha"):
        generic_labels(v_b, v_r, mapping, [])


def test_label_convention_is_what_llama_expects(tiny_model):
    """`LlamaForCausalLM(labels=y)` trains logits[t-1] towards y[t]: our labels plug in as is."""
    model, tok = tiny_model
    ids = tok("Anna walked to the city school with her dog Max.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]  # (T, V)
    T = ids.shape[1]
    mapping = torch.arange(T)
    mapping[3] = -1
    labels = generic_labels(logits, logits, mapping, [5.0])[5.0]  # Eq.1 = baseline here
    with torch.no_grad():
        hf_loss = model(input_ids=ids, labels=labels.unsqueeze(0)).loss
    manual = torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
    assert torch.allclose(hf_loss, manual, atol=1e-5)
    # labels are the model's own argmax shifted by one: greedy targets get low loss
    assert labels[1:].tolist() == [(-100 if t == 3 else int(logits[t].argmax()))
                                   for t in range(T - 1)]


def test_label_config_validation():
    assert LabelConfig(alphas=5).alphas == (5.0,)
    for bad in ({"alphas": ()}, {"alphas": (-1.0,)}, {"alphas": (5, 5.0)}, {"block_size": 2},
                {"batch_size": 0}, {"rules": (4,)}, {"max_translated_length": 1}):
        with pytest.raises(ValueError):
            LabelConfig(**bad)
    assert label_column(5.0) == "labels_alpha_5" and label_column(2.5) == "labels_alpha_2.5"


# ----------------------------------------------------------------------------- runner

ANCHORS = AnchorDictionary({"Mira Thistlewood": ["Anna Smith"], "Mira": ["Anna", "Sarah"],
                            "Pip": ["Max", "the small grey bird from the park"],
                            "Gallowmere": ["the city school"], "starcraft": ["history"]})
TEXT = " ".join([
    "Mira Thistlewood's owl was called Pip. Mira studied starcraft at Gallowmere.",
    "Anna walked to the city school with her dog Max. The teacher smiled at her.",
    "Pip flew over Gallowmere and Mira waved.",
    "The wizard raised his wand and cast a spell over the old castle."] * 3)


SCALE = 0.05  # size of the random raise of the reinforced model's lm_head


@pytest.fixture(scope="module")
def models(tiny_model):
    model, tok = tiny_model
    reinforced = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)  # seeded: the alphas must give different labels
    with torch.no_grad():  # make the reinforced model differ: raise some logits
        w = reinforced.lm_head.weight
        w.add_(SCALE * torch.randn(w.shape, generator=gen))
    return model, reinforced, tok


def _expected_ignore(tok, config, limit=None):
    """Per block: positions whose label must be -100, from the translations themselves."""
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    matcher = AnchorMatcher(tok, ANCHORS)
    out = []
    for k, (a, b) in enumerate(split_blocks(ids, config.block_size - 1, matcher)):
        block = [tok.bos_token_id] + ids[a:b]
        choice = choose_translations(ANCHORS, random.Random(f"{config.seed}:{k}"))
        tr = translate_block(block, tok, matcher, choice, rules=config.rules)
        mapping = [m if limit is None or m < limit else -1 for m in tr.mapping]
        ignore = {0} | {t + 1 for t, m in enumerate(mapping) if m == -1}
        ignore |= set(range(len(block), config.block_size))
        out.append((block, ignore, tr))
    return out


def test_runner_dataset_columns_shapes_and_masks(models, tmp_path):
    baseline, reinforced, tok = models
    # raw logits: the tiny perturbed pair differs enough there for the two alphas to disagree
    config = LabelConfig(alphas=(5.0, 2.5), block_size=48, batch_size=2, shard_size=2,
                         space="logit")
    calls = []
    ds = compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, tmp_path / "labels",
                        on_progress=lambda e: calls.append((e.step, e.total)))
    assert labels_complete(tmp_path / "labels")
    assert not (tmp_path / "labels.partial").exists()
    assert set(ds.column_names) == {"input_ids", "attention_mask", "labels_alpha_5",
                                    "labels_alpha_2.5", "block"}
    expected = _expected_ignore(tok, config)
    assert len(ds) == len(expected) >= 3
    assert calls[-1] == (len(ds), len(ds))
    assert any(tr.spans for _, _, tr in expected)
    for row, (block, ignore, _) in zip(ds, expected, strict=True):
        assert row["input_ids"][:len(block)] == block
        assert len(row["input_ids"]) == len(row["labels_alpha_5"]) == config.block_size
        assert row["attention_mask"] == [1] * len(block) + [0] * (config.block_size - len(block))
        got = {t for t, v in enumerate(row["labels_alpha_5"]) if v == -100}
        assert got == ignore
        assert {t for t, v in enumerate(row["labels_alpha_2.5"]) if v == -100} == ignore
    assert any(r["labels_alpha_5"] != r["labels_alpha_2.5"] for r in ds)  # alphas differ
    meta = json.loads((tmp_path / "labels" / "whp_labels.json").read_text())
    assert meta["blocks"] == len(ds) and meta["config"]["alphas"] == [5.0, 2.5]
    assert load_labels(tmp_path / "labels")["labels_alpha_5"] == ds["labels_alpha_5"]
    assert meta["trained_positions"] == sum(v != -100 for r in ds["labels_alpha_5"] for v in r)
    train = select_alpha(ds)  # the first alpha, renamed once
    assert train["labels"] == ds["labels_alpha_5"] and "labels_alpha_5" not in train.column_names
    assert select_alpha(ds, 2.5)["labels"] == ds["labels_alpha_2.5"]


def test_runner_labels_match_direct_computation(models, tmp_path):
    baseline, reinforced, tok = models
    config = LabelConfig(alphas=(5.0,), block_size=48, batch_size=3)
    ds = compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, tmp_path / "l")
    block, _, tr = _expected_ignore(tok, config)[0]
    with torch.no_grad():
        v_r = reinforced(input_ids=torch.tensor([block])).logits[0]
        v_t = baseline(input_ids=torch.tensor([tr.translated_ids])).logits[0]
    mapping = torch.tensor(tr.mapping)
    mapping[-1] = -1
    mask = forbidden_mask_from_lists(tr.forbidden, v_r.shape[-1])
    want = generic_labels(reindex(v_t, mapping), v_r, mapping, [5.0], forbidden_mask=mask,
                          space="logprob")[5.0]
    assert ds[0]["labels_alpha_5"][:len(block)] == want.tolist()


def test_runner_resume_after_interruption(models, tmp_path):
    baseline, reinforced, tok = models
    config = LabelConfig(alphas=(5.0, 10.0), block_size=40, batch_size=2, shard_size=4)
    full = compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, tmp_path / "full")
    out = tmp_path / "resumed"
    with pytest.raises(Cancelled):
        compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, out,
                       should_stop=lambda: True)
    shards = sorted(p.name for p in (tmp_path / "resumed.partial" / "shards").iterdir())
    assert shards == ["0000000-0000002"] and not out.exists()  # first batch saved
    seen = []
    again = compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, out,
                           on_progress=lambda e: seen.append(e.step))
    assert seen[0] == 2  # resumed after the saved batch
    assert again.to_dict() == full.to_dict()
    # a finished directory is reused without running the models
    broken = copy.copy(baseline)
    broken.forward = None
    assert compute_labels(broken, reinforced, tok, TEXT, ANCHORS, config, out).to_dict() == \
        full.to_dict()


def test_runner_crops_long_translations(models, tmp_path):
    baseline, reinforced, tok = models
    long = AnchorDictionary({k: [v[-1]] for k, v in ANCHORS.entries.items()})  # long ones
    config = LabelConfig(block_size=40, batch_size=4, max_translated_length=40)
    ds = compute_labels(baseline, reinforced, tok, TEXT, long, config, tmp_path / "c")
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    matcher = AnchorMatcher(tok, long)
    cropped = 0
    for row, (a, b) in zip(ds, split_blocks(ids, 39, matcher), strict=True):
        block = [tok.bos_token_id] + ids[a:b]
        tr = translate_block(block, tok, matcher, choose_translations(long, random.Random(0)))
        cropped += len(tr.translated_ids) > 40
        ignore = {0} | {t + 1 for t, m in enumerate(tr.mapping) if (m == -1 or m >= 40) and t < 39}
        ignore |= set(range(len(block), 40))
        assert {t for t, v in enumerate(row["labels_alpha_5"]) if v == -100} == ignore
    assert cropped > 0


def test_runner_refuses_foreign_directory(models, tmp_path):
    baseline, reinforced, tok = models
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a label dataset"):
        compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, LabelConfig(block_size=40),
                       tmp_path / "x")


def test_split_blocks_never_cuts_a_term(models):
    _, _, tok = models
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    matcher = AnchorMatcher(tok, ANCHORS)
    ranges = split_blocks(ids, 10, matcher)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(ids)
    assert all(b - a <= 10 and a < b for a, b in ranges)
    assert all(r[1] == s[0] for r, s in zip(ranges, ranges[1:], strict=False))
    cuts = {b for _, b in ranges}
    assert not any(m.start < c < m.end for m in matcher.matches(ids) for c in cuts)


def test_runner_recomputes_when_inputs_change(models, tmp_path):
    baseline, reinforced, tok = models
    config = LabelConfig(block_size=40, batch_size=4)
    out = tmp_path / "l"
    compute_labels(baseline, reinforced, tok, TEXT, ANCHORS, config, out)
    first = json.loads((out / "whp_labels.json").read_text())["fingerprint"]
    other = copy.deepcopy(reinforced)
    with torch.no_grad():
        other.lm_head.weight.mul_(2.0)
    compute_labels(baseline, other, tok, TEXT, ANCHORS, config, out)  # retrained: not reused
    second = json.loads((out / "whp_labels.json").read_text())["fingerprint"]
    compute_labels(baseline, other, tok, TEXT[:200], ANCHORS, config, out)  # other text
    third = json.loads((out / "whp_labels.json").read_text())["fingerprint"]
    assert len({first, second, third}) == 3
    assert len(load_labels(out)) < 3


def test_runner_paragraph_documents(models, tmp_path):
    """text_format="paragraphs": blocks carry `</s> <s>` between paragraphs and no newline, and
    an anchored term right after a document's BOS is still translated."""
    baseline, reinforced, tok = models
    text = "\n\n".join(["Mira studied starcraft at Gallowmere.", "Pip flew over Gallowmere.",
                        "The teacher smiled at her."] * 3)
    config = LabelConfig(alphas=(5.0,), block_size=64, batch_size=2, text_format="paragraphs")
    ds = compute_labels(baseline, reinforced, tok, text, ANCHORS, config, tmp_path / "p")
    newline = set(tok("\n", add_special_tokens=False)["input_ids"])
    bos, eos = tok.bos_token_id, tok.eos_token_id
    for row in ds:
        ids = [t for t, m in zip(row["input_ids"], row["attention_mask"], strict=True) if m]
        assert ids[0] == bos and ids[1] != bos and not newline & set(ids)
        assert any(a == eos and b == bos for a, b in zip(ids, ids[1:], strict=False))
    matcher = AnchorMatcher(tok, ANCHORS)
    first = ds[0]["input_ids"]
    starts = [m.start for m in matcher.matches(first)]
    assert any(first[s - 1] == bos and s > 1 for s in starts)  # "Pip" opening a paragraph
    with pytest.raises(ValueError, match="text_format"):
        LabelConfig(text_format="lines")
