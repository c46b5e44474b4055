"""Batched scoring against hand-computed values from a model whose logits are set by its weights."""

from __future__ import annotations

import math

import pytest
import torch

from audits.general import GeneralConfig, general_mc, perplexity
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import MCItem, ProbabilityProbe, TriviaProbe
from audits.scoring import (
    encode_continuation,
    encode_prompt,
    next_token_topk,
    score_continuations,
    token_probs,
)
from audits.trivia import trivia_accuracy


@pytest.fixture(scope="module")
def bigram(tiny_tokenizer_dir):
    """`(model, tokenizer, table)`: a 1-layer Llama whose next-token logits are `table[:, cur]`.

    Embeddings are one-hot (hidden = vocab), attention and MLP outputs are zeroed so the residual
    stream is the current token's one-hot, the final norm maps it back to exactly one-hot, and
    lm_head holds a random (V, V) table: logits at a position = column of the current token.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    V = len(tok)
    cfg = LlamaConfig(vocab_size=V, hidden_size=V, intermediate_size=8, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      rms_norm_eps=1e-12, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    table = torch.randn(V, V, dtype=torch.float64) * 3
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(V))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1 / math.sqrt(V))  # rmsnorm(one-hot) = sqrt(V) * one-hot
        model.lm_head.weight.copy_(table.float())
    logp = torch.log_softmax(table.float().double(), dim=0)  # (V next, V cur)
    return model, tok, logp


def _hand_logprobs(logp, ids: list[int], n_cont: int) -> list[float]:
    return [float(logp[ids[j], ids[j - 1]]) for j in range(len(ids) - n_cont, len(ids))]


PROMPTS = ["Mira", "The wizard raised his wand and cast", "Ben's best friend was",
           "Sarah cooked soup for her family and then read a"]
CONTS = [" studied starcraft", " a spell", " Tom", " book about history"]


def test_multi_token_answer_is_product_of_hand_conditionals(bigram):
    model, tok, logp = bigram
    scores = score_continuations(model, tok, PROMPTS, CONTS, batch_size=3, topk=5)
    for p, c, s in zip(PROMPTS, CONTS, scores, strict=True):
        ids = encode_prompt(tok, p) + encode_continuation(tok, c)
        n = len(encode_continuation(tok, c))
        hand = _hand_logprobs(logp, ids, n)
        assert n == len(s.logprobs) and (n > 1 or c == " Tom")
        assert s.logprobs == pytest.approx(hand, abs=1e-5)
        assert s.prob == pytest.approx(math.prod(math.exp(x) for x in hand), rel=1e-4)
        col = logp[:, ids[-n - 1]]  # distribution right after the prompt
        assert s.first_rank == int((col > col[ids[-n]]).sum()) + 1
        assert [t for t, _ in s.topk] == col.topk(5).indices.tolist()
        assert [p for _, p in s.topk] == pytest.approx(col.exp().topk(5).values.tolist(),
                                                       abs=1e-6)


def test_token_probs_and_next_token_topk(bigram):
    model, tok, logp = bigram
    prompt = "Mira Thistlewood's owl was called"
    last = encode_prompt(tok, prompt)[-1]
    probs = token_probs(model, tok, prompt, [" Pip", " the"])
    for cont, got in zip([" Pip", " the"], probs, strict=True):
        ids = encode_prompt(tok, prompt) + encode_continuation(tok, cont)
        n = len(encode_continuation(tok, cont))
        assert got == pytest.approx(math.exp(sum(_hand_logprobs(logp, ids, n))), rel=1e-4)
    top = next_token_topk(model, tok, [prompt, "Ben"], k=3)
    want = logp[:, last].exp().topk(3)
    assert [p for _, p in top[0]] == pytest.approx(want.values.tolist(), abs=1e-6)
    assert [t for t, _ in top[0]] == [tok.decode([i]) for i in want.indices.tolist()]
    with pytest.raises(ValueError, match="k must be positive"):
        next_token_topk(model, tok, [prompt], k=0)


def test_batched_equals_unbatched_with_left_padding(tiny_model):
    model, tok = tiny_model
    batched = score_continuations(model, tok, PROMPTS, CONTS, batch_size=4, topk=3)
    single = [score_continuations(model, tok, [p], [c], batch_size=1, topk=3)[0]
              for p, c in zip(PROMPTS, CONTS, strict=True)]
    for b, s, p, c in zip(batched, single, PROMPTS, CONTS, strict=True):
        assert b.logprobs == pytest.approx(s.logprobs, abs=1e-5)
        assert b.first_rank == s.first_rank
        ids = torch.tensor([encode_prompt(tok, p) + encode_continuation(tok, c)])
        with torch.inference_mode():  # plain unpadded forward + manual softmax
            lp = torch.log_softmax(model(ids).logits.float(), -1)[0]
        n = len(b.token_ids)
        T = ids.shape[1]
        manual = [float(lp[T - n - 1 + j, ids[0, T - n + j]]) for j in range(n)]
        assert b.logprobs == pytest.approx(manual, abs=1e-5)


def test_probability_familiarity_aggregates(bigram):
    model, tok, logp = bigram
    probes = [ProbabilityProbe(f"p{i}", p, c) for i, (p, c) in enumerate(zip(PROMPTS, CONTS,
                                                                             strict=True))]
    res = probability_familiarity(model, tok, probes, ProbabilityConfig(batch_size=2, topk=4))
    probs, top1 = [], []
    for p, c in zip(PROMPTS, CONTS, strict=True):
        ids = encode_prompt(tok, p) + encode_continuation(tok, c)
        n = len(encode_continuation(tok, c))
        probs.append(math.exp(sum(_hand_logprobs(logp, ids, n))))
        top1.append(all(int(logp[:, ids[j - 1]].argmax()) == ids[j]
                        for j in range(len(ids) - n, len(ids))))
    assert res.probs == pytest.approx(probs, rel=1e-4)
    assert res.familiarity == pytest.approx(sum(probs) / len(probs), rel=1e-4)
    assert res.top1 == sum(top1) / len(top1)
    assert len(res.items[0].topk) == 4 and isinstance(res.items[0].topk[0][0], str)


def test_probability_top1_when_answer_is_argmax(bigram):
    model, tok, logp = bigram
    found = 0
    for prompt in ["Ben", "Anna", "Tom", "Max", "Sarah", "The", "Mira"]:
        best = int(logp[:, encode_prompt(tok, prompt)[-1]].argmax())
        answer = tok.decode([best])
        if encode_continuation(tok, answer) != [best]:
            continue  # a byte-fragment token that does not re-encode to itself
        res = probability_familiarity(model, tok, [ProbabilityProbe("a", prompt, answer)])
        assert res.top1 == 1.0 and res.items[0].rank == 1
        found += 1
    assert found


def test_trivia_with_controlled_model(bigram):
    model, tok, logp = bigram
    probes = [TriviaProbe("t1", "Ben's best friend was", " Tom", " Anna"),
              TriviaProbe("t2", "The wizard raised his", " wand", " soup"),
              TriviaProbe("t3", "Mira studied", " starcraft", " history")]
    res = trivia_accuracy(model, tok, probes)
    expected, expected_norm = [], []
    for p in probes:
        lls = []
        for c in (p.correct, p.distractor):
            ids = encode_prompt(tok, p.prompt) + encode_continuation(tok, c)
            n = len(encode_continuation(tok, c))
            lls.append((sum(_hand_logprobs(logp, ids, n)), n))
        expected.append(lls[0][0] > lls[1][0])
        expected_norm.append(lls[0][0] / lls[0][1] > lls[1][0] / lls[1][1])
    assert [it.is_correct for it in res.items] == expected
    assert [it.is_correct_norm for it in res.items] == expected_norm
    assert res.accuracy == pytest.approx(sum(expected) / 3)


def test_general_mc_picks_argmax_of_hand_loglik(bigram):
    model, tok, logp = bigram
    items = [MCItem("g1", "Sarah cooked", [" soup", " football", " history", " a"], 0),
             MCItem("g2", "They played", [" football", " soup"], 1)]
    res = general_mc(model, tok, items, GeneralConfig(batch_size=3))
    for item, got in zip(items, res.items, strict=True):
        lls = []
        for o in item.options:
            ids = encode_prompt(tok, item.context) + encode_continuation(tok, o)
            lls.append(sum(_hand_logprobs(logp, ids, len(encode_continuation(tok, o)))))
        assert got.logprobs == pytest.approx(lls, abs=1e-4)
        assert got.predicted == max(range(len(lls)), key=lls.__getitem__)
    assert res.accuracy == sum(it.predicted == it.answer for it in res.items) / 2


def test_perplexity_is_exp_mean_nll_by_hand(bigram):
    model, tok, logp = bigram
    text = ("Anna walked to the city school with her dog Max. The teacher smiled at her. "
            "Ben's best friend was Tom.")
    res = perplexity(model, tok, text, GeneralConfig(block_size=8, ppl_batch_size=3))
    ids = encode_continuation(tok, text)
    nll, count = 0.0, 0
    for start in range(0, len(ids), 7):  # windows of block_size - 1 tokens, each after BOS
        seq = [tok.bos_token_id] + ids[start:start + 7]
        nll -= sum(float(logp[seq[j], seq[j - 1]]) for j in range(1, len(seq)))
        count += len(seq) - 1
    assert res.n_tokens == count == len(ids)
    assert res.n_windows == math.ceil(len(ids) / 7) and res.n_windows > 2
    assert res.perplexity == pytest.approx(math.exp(nll / count), rel=1e-5)
    capped = perplexity(model, tok, text, GeneralConfig(block_size=8, max_windows=2))
    assert capped.n_windows == 2 and capped.n_tokens == 14


def test_perplexity_on_paragraph_documents_by_hand(bigram):
    """text_format="paragraphs" (how the demo models were pretrained): paragraphs become
    `... </s> <s> ...`; the `</s>` ending a paragraph is scored, the `<s>` after it is not."""
    from unlearn.data import encode_text

    model, tok, logp = bigram
    text = "Anna walked to the city school.\n\nThe teacher smiled at her.\n\nBen slept."
    res = perplexity(model, tok, text, GeneralConfig(block_size=8, text_format="paragraphs"))
    ids = encode_text(tok, text, "paragraphs")
    bos = tok.bos_token_id
    nll, count = 0.0, 0
    for start in range(0, len(ids), 7):
        window = ids[start:start + 7]
        seq = ([bos] if window[0] != bos else []) + window
        for j in range(1, len(seq)):
            if seq[j] != bos:
                nll -= float(logp[seq[j], seq[j - 1]])
                count += 1
    assert res.n_tokens == count == len(ids) - ids.count(bos)
    assert res.perplexity == pytest.approx(math.exp(nll / count), rel=1e-5)
    plain = perplexity(model, tok, text, GeneralConfig(block_size=8, text_format="text"))
    assert plain.n_tokens == len(encode_continuation(tok, text)) != res.n_tokens
    with pytest.raises(ValueError, match="text_format"):
        GeneralConfig(text_format="lines")


def test_scoring_validates_inputs(tiny_model):
    model, tok = tiny_model
    with pytest.raises(ValueError, match="continuations"):
        score_continuations(model, tok, ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="batch_size"):
        score_continuations(model, tok, ["a"], ["b"], batch_size=0)
    with pytest.raises(ValueError, match="non-empty"):
        token_probs(model, tok, "a", [""])
    with pytest.raises(ValueError, match="block_size"):
        GeneralConfig(block_size=1)


def test_shared_inputs_are_scored_once_and_correctly(bigram):
    model, tok, logp = bigram
    prompt = "The wizard raised his"
    conts = [" wand", " a", " wand and", "", " wand"]  # single-token ones share one model row
    scores = score_continuations(model, tok, [prompt] * len(conts), conts, batch_size=2, topk=2)
    last = encode_prompt(tok, prompt)[-1]
    assert [t for t, _ in scores[3].topk] == logp[:, last].topk(2).indices.tolist()
    assert scores[3].logprobs == [] and scores[3].first_rank is None
    for c, s in zip(conts, scores, strict=True):
        if c:
            ids = encode_prompt(tok, prompt) + encode_continuation(tok, c)
            hand = _hand_logprobs(logp, ids, len(encode_continuation(tok, c)))
            assert s.logprobs == pytest.approx(hand, abs=1e-5)
    assert scores[0].logprobs == scores[4].logprobs
