"""The finetune losses on hand-written tensors with exact expected values."""

from __future__ import annotations

import math

import pytest
import torch

from unlearn import losses


def _logits(rows):
    """(1, T, V) logits from a list of per-position rows."""
    return torch.tensor([rows], dtype=torch.float32)


# position t predicts label t+1: two prediction positions over a 2-token vocabulary
LOGITS = _logits([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, 5.0]])
LABELS = torch.tensor([[7, 1, 0]])  # label 0 is never predicted (shifted away)
# p(1 | pos 0) = 1/2 ; p(0 | pos 1) = 3/4
NLL = -(math.log(0.5) + math.log(0.75)) / 2


def test_nll_shifts_and_averages():
    assert losses.nll(LOGITS, LABELS).item() == pytest.approx(NLL, abs=1e-6)


def test_whp_loss_ignores_minus_100():
    labels = torch.tensor([[7, -100, 0]])  # only pos 1 -> label 0 counts
    assert losses.whp_loss(LOGITS, labels).item() == pytest.approx(-math.log(0.75), abs=1e-6)


def test_all_ignored_gives_zero_with_graph():
    logits = LOGITS.clone().requires_grad_(True)
    loss = losses.whp_loss(logits, torch.full((1, 3), -100))
    assert loss.item() == 0.0
    loss.backward()  # still differentiable (DDP needs every parameter in the graph)
    assert logits.grad is not None


def test_gradient_ascent_is_negative_nll():
    assert losses.gradient_ascent_loss(LOGITS, LABELS).item() == pytest.approx(-NLL, abs=1e-6)
    logits = LOGITS.clone().requires_grad_(True)
    losses.gradient_ascent_loss(logits, LABELS).backward()
    # ascent pushes the label's logit DOWN: gradient on it is negative of descent's (positive)
    assert logits.grad[0, 0, 1] > 0 and logits.grad[0, 1, 0] > 0


def test_gradient_difference_combines():
    retain_logits = _logits([[0.0, math.log(4.0)], [0.0, 0.0]])
    retain_labels = torch.tensor([[3, 1]])  # p = 4/5
    value = losses.gradient_difference_loss(LOGITS, LABELS, retain_logits, retain_labels, 2.0)
    assert value.item() == pytest.approx(-NLL + 2.0 * -math.log(0.8), abs=1e-6)


def test_sequence_logprob():
    assert losses.sequence_logprob(LOGITS, LABELS).item() == pytest.approx(
        math.log(0.5) + math.log(0.75), abs=1e-6)


def test_npo_closed_form():
    policy = torch.tensor([-2.0, -5.0])
    ref = torch.tensor([-3.0, -5.0])
    beta = 0.5
    # (2/beta) * mean log(1 + (pi/pi_ref)^beta); ratios e^1 and 1
    expected = (2 / beta) * (math.log(1 + math.exp(0.5)) + math.log(2.0)) / 2
    assert losses.npo_loss(policy, ref, beta).item() == pytest.approx(expected, abs=1e-6)
    # at initialisation (policy == reference) NPO is (2/beta) * log 2
    assert losses.npo_loss(ref, ref, 0.1).item() == pytest.approx(20 * math.log(2), abs=1e-5)


def test_npo_gradient_lowers_target_likelihood_and_rejects_bad_beta():
    policy = torch.tensor([-2.0], requires_grad=True)
    losses.npo_loss(policy, torch.tensor([-2.0]), 0.1).backward()
    assert policy.grad.item() > 0  # descending the loss decreases log pi(target)
    with pytest.raises(ValueError, match="beta"):
        losses.npo_loss(policy, policy, 0.0)


def test_npo_large_ratio_does_not_overflow():
    value = losses.npo_loss(torch.tensor([500.0]), torch.tensor([0.0]), 1.0)
    assert value.item() == pytest.approx(2 * 500.0, rel=1e-6)
