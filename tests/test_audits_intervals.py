"""The report's bootstrap intervals bracket the headline scores they belong to."""

from __future__ import annotations

from audits.probability import ProbabilityItem, ProbabilityResult
from audits.report import AuditConfig, _intervals_step
from audits.trivia import TriviaItem, TriviaResult


def test_intervals_bracket_headline_means():
    probs = [0.1, 0.2, 0.9, 0.4, 0.05, 0.6]
    prob = ProbabilityResult(sum(probs) / 6, 0.5, [
        ProbabilityItem(str(i), "p", " a", p, 1, 1, i % 2 == 0, []) for i, p in enumerate(probs)])
    triv = TriviaResult(0.75, 0.75, [TriviaItem(str(i), "p", " a", " b", 0.0, 0.0, i != 0, True)
                                     for i in range(4)])
    iv = _intervals_step({"m": {"probability": prob, "trivia": triv}}, AuditConfig(n_boot=200))
    fam = iv["m"]["probability_familiarity"]
    assert fam["mean"] == prob.familiarity and fam["n"] == 6
    assert min(probs) <= fam["ci_low"] < fam["mean"] < fam["ci_high"] <= max(probs)
    assert iv["m"]["probability_top1"]["mean"] == 0.5
    assert iv["m"]["trivia_accuracy"]["mean"] == 0.75
