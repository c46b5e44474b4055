"""Familiarity score, generation, verbatim ROUGE-L, forget quality (KS) and neighbour deltas."""

from __future__ import annotations

import pytest

from audits.familiarity import (
    CompletionConfig,
    completion_familiarity,
    familiarity_score,
    grade_distribution,
)
from audits.forget import forget_quality
from audits.generation import GenerationConfig, generate
from audits.judges import Grade
from audits.neighbour import baseline_name, score_deltas
from audits.probes import CompletionProbe, VerbatimProbe
from audits.verbatim import VerbatimConfig, rouge_l, verbatim_rouge


def test_familiarity_score_by_hand():
    grades = [3, 3, 2, 1, 0, 0, 2, 3, 0, 0]
    assert familiarity_score(grades) == pytest.approx((5 * 3 + 2) / 10)  # 1.7
    assert grade_distribution(grades) == {0: 4, 1: 1, 2: 2, 3: 3}
    assert familiarity_score([]) == 0.0
    assert familiarity_score([2, 2, 1, 0]) == 0.5
    with pytest.raises(ValueError, match="0-3"):
        familiarity_score([4])


class _LengthJudge:
    """Grade = number of characters mod 4: deterministic, no terms needed."""

    def grade(self, prompt: str, completion: str) -> Grade:
        return Grade(len(completion) % 4, f"len {len(completion)}")


def test_completion_familiarity_is_seeded_and_consistent(tiny_model):
    model, tok = tiny_model
    probes = [CompletionProbe(f"c{i}", p) for i, p in enumerate(
        ["Mira studied", "The wizard raised his wand", "Ben's best friend was"])]
    cfg = CompletionConfig(GenerationConfig(max_new_tokens=6, batch_size=2, seed=3), 2)
    a = completion_familiarity(model, tok, probes, _LengthJudge(), cfg)
    b = completion_familiarity(model, tok, probes, _LengthJudge(), cfg)
    assert [it.completion for it in a.items] == [it.completion for it in b.items]
    assert a.n == 6 and [it.id for it in a.items] == ["c0", "c0", "c1", "c1", "c2", "c2"]
    grades = [len(it.completion) % 4 for it in a.items]
    assert a.score == familiarity_score(grades)
    assert a.distribution == grade_distribution(grades)
    assert a.to_dict()["distribution"] == {str(k): v for k, v in a.distribution.items()}


def test_generate_returns_completion_only(tiny_model):
    model, tok = tiny_model
    prompts = ["Anna walked to the city school with her dog", "Sarah cooked"]
    greedy = GenerationConfig(temperature=0, max_new_tokens=5)
    outs = generate(model, tok, prompts, greedy)
    for p, out in zip(prompts, outs, strict=True):
        alone = generate(model, tok, [p], greedy)[0]  # left padding must not change greedy output
        assert out == alone and p not in out
        assert len(tok(out, add_special_tokens=False)["input_ids"]) <= 6
    short = generate(model, tok, prompts, greedy, max_new_tokens=[1, 5])
    assert short[1] == outs[1] and len(short[0]) <= len(outs[0])
    assert tok.padding_side == "left"


@pytest.mark.parametrize("kwargs,match", [
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"), ({"batch_size": 0}, "batch_size")])
def test_generation_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GenerationConfig(**kwargs)


def test_rouge_l_by_hand():
    # LCS("the cat sat on the mat", "the cat on the mat") = 5 tokens: P = 5/5, R = 5/6
    assert rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)
    assert rouge_l("a b c", "a b c") == 1.0
    assert rouge_l("x y", "a b") == 0.0


def test_verbatim_rouge_on_model(tiny_model):
    model, tok = tiny_model
    probes = [VerbatimProbe("v1", "Anna walked to the city", " school with her dog Max."),
              VerbatimProbe("v2", "The wizard raised", " his wand and cast a spell.")]
    res = verbatim_rouge(model, tok, probes, VerbatimConfig(batch_size=2))
    for p, it in zip(probes, res.items, strict=True):
        assert it.rougeL == pytest.approx(rouge_l(it.generated, p.continuation))
        n_true = len(tok(p.continuation, add_special_tokens=False)["input_ids"])
        assert len(tok(it.generated, add_special_tokens=False)["input_ids"]) <= n_true + 1
    assert res.rougeL == pytest.approx(sum(it.rougeL for it in res.items) / 2)


def test_forget_quality_ks_by_hand_and_vs_scipy():
    from scipy.stats import ks_2samp

    q = forget_quality([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert q.statistic == 1.0 and q.pvalue == pytest.approx(0.1)  # exact: 2 / C(6, 3)
    a, b = [0.01, 0.5, 0.2, 0.33, 0.9], [0.02, 0.4, 0.25, 0.7]
    q = forget_quality(a, b)
    ref = ks_2samp(a, b)
    assert (q.statistic, q.pvalue, q.n) == (pytest.approx(ref.statistic),
                                            pytest.approx(ref.pvalue), 5)
    with pytest.raises(ValueError, match="non-empty"):
        forget_quality([], [0.1])


def test_neighbour_deltas():
    scores = {"first": {"neighbour_trivia_accuracy": 0.5},
              "original": {"neighbour_trivia_accuracy": 0.75},
              "unlearned": {"neighbour_trivia_accuracy": 0.5}}
    assert baseline_name(list(scores)) == "original"
    assert baseline_name(["a", "b"]) == "a"
    d = score_deltas(scores, "original")
    assert d["unlearned"]["neighbour_trivia_accuracy"] == -0.25
    assert d["original"]["neighbour_trivia_accuracy"] == 0.0
    assert d["unlearned"]["neighbour_probability_familiarity"] is None
