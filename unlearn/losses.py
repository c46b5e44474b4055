"""Finetune losses as pure tensor functions: WHP, gradient ascent, gradient difference, NPO.

All take logits `(B, T, V)` and labels `(B, T)` in the Hugging Face causal-LM convention: the
labels are aligned with `input_ids` and the shift happens here (logits at position t predict the
label at t + 1); label -100 is ignored. Logits are upcast to float32 before log-softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unlearn.runtime import IGNORE_INDEX


def _shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, V), (B, T) -> (B, T-1, V) float32 logits and the (B, T-1) labels they predict."""
    return logits[:, :-1, :].float(), labels[:, 1:]


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label token and its mask, both (B, T-1); masked entries are 0."""
    logits, labels = _shift(logits, labels)
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the non-ignored label tokens (0 when there are none)."""
    logits, labels = _shift(logits, labels)
    if not (labels != IGNORE_INDEX).any():
        return logits.sum() * 0.0  # keeps the graph (DDP needs every parameter used)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def whp_loss(logits: torch.Tensor, generic_labels: torch.Tensor) -> torch.Tensor:
    """WHP finetune loss: cross-entropy on the generic labels (-100 positions skipped)."""
    return nll(logits, generic_labels)


def gradient_ascent_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: minimise the *negative* NLL of the target text."""
    return -nll(logits, labels)


def gradient_difference_loss(forget_logits: torch.Tensor, forget_labels: torch.Tensor,
                             retain_logits: torch.Tensor, retain_labels: torch.Tensor,
                             retain_weight: float = 1.0) -> torch.Tensor:
    """Gradient difference: -NLL(target) + retain_weight * NLL(retain text)."""
    return (-nll(forget_logits, forget_labels)
            + retain_weight * nll(retain_logits, retain_labels))


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of label-token log-probabilities per sequence, (B,)."""
    logp, _ = token_logprobs(logits, labels)
    return logp.sum(-1)


def npo_loss(policy_logp: torch.Tensor, ref_logp: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """NPO: (2/beta) * mean_i log(1 + (pi_theta(y_i) / pi_ref(y_i))^beta).

    `policy_logp` and `ref_logp` are sequence log-probabilities (B,) of the target sequences under
    the trained and the frozen reference model. Written as softplus(beta * log-ratio), which is
    the same quantity without overflow.
    """
    if beta <= 0:
        raise ValueError(f"NPO beta must be > 0, got {beta}")
    log_ratio = policy_logp.float() - ref_logp.float()
    return (2.0 / beta) * F.softplus(beta * log_ratio).mean()
