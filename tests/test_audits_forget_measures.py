"""Forget measures: AUC, PrivLeak, gap closed, truth ratio, Min-K%, bootstrap, MIA on a model."""

from __future__ import annotations

import math

import pytest
import torch

from audits.forget_measures import (
    auc,
    bootstrap_ci,
    chunks,
    compare_truth_ratios,
    interval,
    knowledge_gap_closed,
    mia_scores,
    min_k_score,
    paired_sign_test,
    privleak,
    truth_ratio_of,
    truth_ratios,
)
from audits.probes import TriviaProbe
from audits.scoring import score_continuations


def test_auc_and_privleak_by_hand():
    # pairs: 3>1, 3>2, 2>1 win; 2=2 ties (1/2): 3.5 / 4
    assert auc([3, 2], [1, 2]) == 0.875
    assert auc([1, 2], [3, 4]) == 0.0 and auc([5], [1]) == 1.0
    assert auc([1, 1], [1, 1]) == 0.5
    assert privleak(0.875, 0.5) == pytest.approx(0.75)
    assert privleak(0.5, 0.5) == 0.0
    with pytest.raises(ValueError):
        auc([], [1.0])
    with pytest.raises(ValueError):
        privleak(0.5, 0.0)


def test_knowledge_gap_closed_by_hand():
    assert knowledge_gap_closed(0.6, 0.3, 0.1) == pytest.approx(0.6)
    assert knowledge_gap_closed(0.6, 0.1, 0.1) == pytest.approx(1.0)
    assert knowledge_gap_closed(0.6, 0.6, 0.1) == 0.0
    assert knowledge_gap_closed(0.5, 0.2, 0.5) is None


def test_min_k_truth_ratio_and_bootstrap():
    assert min_k_score([-1, -5, -3, -2, -4], k=0.4) == -4.5
    assert min_k_score([-1, -2], k=0.1) == -2  # at least one token
    # correct: 2 tokens, log p = -2 (per token -1); wrong: 3 tokens, log p = -6 (per token -2)
    assert truth_ratio_of(-2.0, 2, -6.0, 3) == pytest.approx(math.exp(-1))
    assert bootstrap_ci([0.3] * 10) == pytest.approx((0.3, 0.3))
    values = [float(i % 2) for i in range(200)]
    lo, hi = bootstrap_ci(values, seed=1)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert bootstrap_ci(values, seed=1) == (lo, hi)  # seeded
    iv = interval(values)
    assert iv["mean"] == 0.5 and iv["n"] == 200 and iv["ci_low"] < 0.5 < iv["ci_high"]
    assert interval([])["mean"] is None


def test_chunks_split_at_sentences():
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    out = chunks(text, chars=20)
    assert out == ["One two three. Four five six.", "Seven eight nine. Ten eleven twelve."]
    assert chunks(text, chars=20, max_chunks=1) == out[:1]


def test_truth_ratio_on_model_matches_token_probs(tiny_model):
    model, tok = tiny_model
    probes = [TriviaProbe("t1", "Mira Thistlewood's owl was called", " Pip", " Max the dog"),
              TriviaProbe("t2", "Ben's best friend was", " Tom", " Anna")]
    res = truth_ratios(model, tok, probes)
    for p, r in zip(probes, res.ratios, strict=True):
        c, w = score_continuations(model, tok, [p.prompt] * 2, [p.correct, p.distractor])
        want = w.prob ** (1 / len(w.token_ids)) / c.prob ** (1 / len(c.token_ids))
        assert r == pytest.approx(want, rel=1e-4)
    same = truth_ratios(model, tok, probes)
    compare_truth_ratios(same, res)
    assert same.ks_statistic == 0.0 and same.ks_pvalue == 1.0


def test_mia_detects_text_the_model_was_trained_on(tiny_model):
    """Finetune a copy on the member texts: every MIA score then separates them (AUC > 0.9),
    while the untouched model is near chance on the same split."""
    import copy

    model, tok = tiny_model
    members = ["Anna walked to the city school with her dog Max and the teacher smiled.",
               "Mira Thistlewood's owl was called Pip and it flew over Gallowmere.",
               "The wizard raised his wand and cast a spell over the old castle.",
               "Ben's best friend was Tom and they played football after lessons."]
    nonmembers = ["Sarah cooked soup for her family and then read a book about history.",
                  "The teacher smiled at the dog and the owl flew over the park.",
                  "Tom read a book about the castle and then cooked soup for Anna.",
                  "The city school had a park where Max played football with Ben."]
    work = copy.deepcopy(model)
    opt = torch.optim.AdamW(work.parameters(), lr=1e-2)
    x = torch.tensor([tok(" ".join(members))["input_ids"]])
    torch.manual_seed(0)
    work.train()
    for _ in range(50):
        work(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()
    work.eval()
    trained = mia_scores(work, tok, members, nonmembers)
    assert all(a > 0.9 for a in trained.auc.values()), trained.auc
    assert trained.n_members == 4 and len(trained.members["min_k"]) == 4
    before = mia_scores(model, tok, members, nonmembers)
    assert before.auc["loss"] < trained.auc["loss"]


def test_paired_sign_test_is_the_exact_two_sided_binomial():
    """Exact McNemar on hand-counted cases: only discordant items count, p = 2 * P(X <= min)."""
    right = [True] * 5 + [False] * 5
    assert paired_sign_test(right, right) == (0, 0, 1.0)  # no discordant item
    first = [True] * 5 + [True, False]
    second = [False] * 5 + [True, True]  # 5 only first, 1 only second, 1 both
    assert paired_sign_test(first, second) == (5, 1, pytest.approx(2 * (1 + 6) / 2 ** 6))
    assert paired_sign_test([True] * 5, [False] * 5) == (5, 0, pytest.approx(2 / 2 ** 5))
    assert paired_sign_test([True, False], [False, True])[2] == 1.0  # capped at 1
    with pytest.raises(ValueError, match="same items"):
        paired_sign_test([True], [True, False])
