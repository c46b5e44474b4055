"""WHP at inference time: Eq. 1 on both models' logits, cached == uncached decoding."""

from __future__ import annotations

import pytest
import torch

from unlearn.inference_whp import WHPInferenceModel, load_whp_inference, whp_logits


@pytest.fixture(scope="module")
def pair(tiny_model_dir):
    """A baseline and a perturbed copy standing in for the reinforced model."""
    from unlearn.models import load_model

    base, tok = load_model(str(tiny_model_dir))
    reinf, _ = load_model(str(tiny_model_dir))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in reinf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return base, reinf, tok


def test_whp_logits_formula():
    v_b = torch.tensor([[1.0, 2.0, 3.0]])
    v_r = torch.tensor([[2.0, 2.0, 1.0]])  # raised, equal, lowered
    assert whp_logits(v_b, v_r, 5.0, space="logit").tolist() == [[1.0 - 5.0, 2.0, 3.0]]
    # default: the same formula on log-probabilities
    lb, lr = torch.log_softmax(v_b, -1), torch.log_softmax(v_r, -1)
    torch.testing.assert_close(whp_logits(v_b, v_r, 5.0), lb - 5.0 * torch.relu(lr - lb))


def test_logprob_space_ignores_a_row_shift_logit_space_does_not():
    """Logits are defined up to a constant per row; only the logprob space is blind to it."""
    v_b = torch.tensor([[3.0, 2.0, 0.0]])
    v_r = torch.tensor([[5.0, 1.9, -3.0]])  # reinforcement raised token 0, lowered the others
    shifted = v_r + 4.0  # the same distribution, every logit four higher
    assert whp_logits(v_b, v_r, 5.0).argmax().item() == 1
    assert whp_logits(v_b, v_r, 5.0, space="logit").argmax().item() == 1
    torch.testing.assert_close(whp_logits(v_b, shifted, 5.0), whp_logits(v_b, v_r, 5.0))
    # on raw logits the shift makes ReLU fire everywhere (the un-rectified formula): Eq. 1 now
    # prefers the token the reinforced model made least likely
    assert whp_logits(v_b, shifted, 5.0, space="logit").argmax().item() == 2


def test_forward_combines_logits_at_every_position(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=2.5)
    enc = tok(["Mira studied starcraft", "The wizard"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        got = model(**enc).logits
        v_b = base(**enc).logits.float()
        v_r = reinf(**enc).logits.float()
    assert got.shape == v_b.shape
    lb, lr = torch.log_softmax(v_b, -1), torch.log_softmax(v_r, -1)
    torch.testing.assert_close(got, lb - 2.5 * torch.relu(lr - lb))
    assert model.config is base.config and model.device == base.device


def test_cached_generation_equals_uncached(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=5.0)
    tok.padding_side = "left"
    enc = tok(["Mira Thistlewood's owl", "The teacher smiled at"], return_tensors="pt",
              padding=True)
    cached = model.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=8,
                            eos_token_id=[])
    plain = model.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=8,
                           use_cache=False, eos_token_id=[])
    assert cached.shape == (2, enc["input_ids"].shape[1] + 8)
    assert cached.tolist() == plain.tolist()
    # greedy on Eq. 1 by hand (full recomputation, one row)
    ids = tok("The teacher smiled at", return_tensors="pt")["input_ids"]
    for _ in range(4):
        with torch.inference_mode():
            logits = whp_logits(base(ids).logits[:, -1], reinf(ids).logits[:, -1], 5.0)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=-1)
    alone = model.generate(tok("The teacher smiled at", return_tensors="pt")["input_ids"],
                           max_new_tokens=4, eos_token_id=[])
    assert alone.tolist() == ids.tolist()


def test_sampling_streamer_and_text(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf)
    seen = []

    class Streamer:
        def put(self, value):
            seen.append(value.clone())

        def end(self):
            seen.append("end")

    ids = tok("The wizard", return_tensors="pt")["input_ids"]
    gen = torch.Generator().manual_seed(0)
    out = model.generate(ids, max_new_tokens=5, do_sample=True, temperature=0.8, top_p=0.9,
                         streamer=Streamer(), generator=gen, eos_token_id=[])
    assert out.shape[1] == ids.shape[1] + 5
    assert seen[0].tolist() == ids.tolist() and seen[-1] == "end" and len(seen) == 7
    texts = list(model.stream_text(tok, "The wizard", max_new_tokens=3, eos_token_id=[]))
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_usable_by_audit_scoring(pair):
    import audits.scoring as audits_scoring
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=5.0)
    probs = audits_scoring.token_probs(model, tok, "Mira Thistlewood's owl was called",
                                       [" Pip", " the"])
    assert len(probs) == 2 and all(0.0 <= p <= 1.0 for p in probs)


def test_usable_by_audit_generation(pair):
    import audits.generation as audits_generation
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=5.0)
    config = audits_generation.GenerationConfig(max_new_tokens=4, batch_size=2)
    outs = audits_generation.generate(model, tok, ["The wizard", "Mira studied starcraft at",
                                                   "Anna"], config)
    assert len(outs) == 3 and all(isinstance(o, str) for o in outs)


def test_load_and_validation(tiny_model_dir):
    model, tok = load_whp_inference(str(tiny_model_dir), str(tiny_model_dir), alpha=1.0)
    ids = tok("Anna walked", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        # identical models: Eq. 1 leaves the baseline's log-probabilities unchanged
        torch.testing.assert_close(model(ids).logits,
                                   torch.log_softmax(model.baseline(ids).logits.float(), -1))
    with pytest.raises(ValueError, match="alpha"):
        WHPInferenceModel(model.baseline, model.reinforced, alpha=-1)
    with pytest.raises(ValueError, match="space"):
        WHPInferenceModel(model.baseline, model.reinforced, space="probs")


def _plain_pair(pair):
    """WHP with alpha 0 on raw logits is the baseline itself: v_b - 0 * relu(v_r - v_b)."""
    base, reinf, tok = pair
    return WHPInferenceModel(base, reinf, alpha=0.0, space="logit"), base, tok


def test_greedy_equals_plain_generate(pair):
    model, base, tok = _plain_pair(pair)
    enc = tok("Mira Thistlewood's owl", return_tensors="pt")  # explicit mask: pad id == BOS id
    with torch.inference_mode():
        want = base.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=0)
    got = model.generate(**enc, max_new_tokens=12, pad_token_id=0)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("options", [
    {"repetition_penalty": 1.8},
    {"do_sample": True, "top_k": 4, "temperature": 0.7},
    {"do_sample": True, "top_k": 6, "top_p": 0.8, "repetition_penalty": 1.3},
])
def test_top_k_and_repetition_penalty_as_in_transformers(pair, options):
    """Same processors, same RNG draws: the tokens of `model.generate` with those options."""
    model, base, tok = _plain_pair(pair)
    enc = tok("The teacher smiled at", return_tensors="pt")  # explicit mask: pad id == BOS id
    full = {"top_k": 0, "top_p": 1.0, "temperature": 1.0, **options}
    seen = set()
    for seed in range(4):
        torch.manual_seed(seed)
        with torch.inference_mode():
            want = base.generate(**enc, max_new_tokens=10, pad_token_id=0, **full)
        torch.manual_seed(seed)
        got = model.generate(**enc, max_new_tokens=10, pad_token_id=0, **full)
        assert got.tolist() == want.tolist(), (options, seed)
        seen.add(tuple(got[0].tolist()))
    assert len(seen) > 1 if options.get("do_sample") else len(seen) == 1  # seeds matter


def test_repetition_penalty_changes_greedy_text(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=5.0)
    ids = tok("The teacher smiled at", return_tensors="pt")["input_ids"]
    plain = model.generate(ids, max_new_tokens=16, eos_token_id=[])
    penalised = model.generate(ids, max_new_tokens=16, eos_token_id=[], repetition_penalty=3.0)
    assert plain.tolist() != penalised.tolist()
    new = penalised[0, ids.shape[1]:].tolist()
    assert len(set(new)) > len(set(plain[0, ids.shape[1]:].tolist()))


def test_top_k_one_is_greedy(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf, alpha=5.0)
    ids = tok("Anna walked", return_tensors="pt")["input_ids"]
    greedy = model.generate(ids, max_new_tokens=8, eos_token_id=[])
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        sampled = model.generate(ids, max_new_tokens=8, eos_token_id=[], do_sample=True,
                                 temperature=1.5, top_k=1, generator=gen)
        assert sampled.tolist() == greedy.tolist()


@pytest.mark.parametrize("option, value", [
    ("num_beams", 2), ("num_return_sequences", 3), ("no_repeat_ngram_size", 2),
    ("min_new_tokens", 4), ("typical_p", 0.5), ("penalty_alpha", 0.6), ("foo_bar", 1),
])
def test_unsupported_options_are_refused_by_name(pair, option, value):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf)
    ids = tok("Anna walked", return_tensors="pt")["input_ids"]
    with pytest.raises(ValueError, match=option):
        model.generate(ids, max_new_tokens=2, **{option: value})
    with pytest.raises(ValueError, match=option):
        next(model.stream_text(tok, "Anna walked", max_new_tokens=2, **{option: value}))


def test_neutral_values_and_bad_values(pair):
    base, reinf, tok = pair
    model = WHPInferenceModel(base, reinf)
    ids = tok("Anna walked", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=2, eos_token_id=[], num_beams=1,
                         num_return_sequences=1, stopping_criteria=[], top_k=None)
    assert out.shape[1] == ids.shape[1] + 2
    for bad, match in (({"top_k": -1}, "top_k"), ({"repetition_penalty": 0.0}, "repetition"),
                       ({"top_p": 1.5}, "top_p"), ({"max_new_tokens": 0}, "max_new_tokens")):
        with pytest.raises(ValueError, match=match):
            model.generate(ids, **{"max_new_tokens": 2, **bad})


def test_repetition_penalty_on_a_left_padded_batch_as_in_transformers(pair):
    """`generate` leaves the left padding out of the penalty; so does WHP at inference."""
    model, base, tok = _plain_pair(pair)
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(["The teacher smiled at", "Anna"], return_tensors="pt", padding=True)
    finally:
        tok.padding_side = side
    assert (enc["attention_mask"] == 0).any()  # the second row is padded
    with torch.inference_mode():
        want = base.generate(**enc, max_new_tokens=10, do_sample=False, pad_token_id=0,
                             repetition_penalty=1.8)
    got = model.generate(**enc, max_new_tokens=10, pad_token_id=0, repetition_penalty=1.8)
    assert got.tolist() == want.tolist()
