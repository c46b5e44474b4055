"""Generic labels (docs/WHP.md sections 2, 4, 5): Eq. 1 as pure tensor math.

The runner that labels a whole target text is `unlearn.label_runner`.

Label convention (the one `LlamaForCausalLM(input_ids=x, labels=y)` expects): `labels` is aligned
with `input_ids` and the model shifts internally, i.e. the logits at position `t` are trained
towards `labels[t + 1]`. So `labels[..., 0]` is always -100 and, for `t >= 1`,

    labels[..., t] = argmax_v generic_logits(v_b[..., t - 1, :], v_r[..., t - 1, :], alpha)
                     if mapping[..., t - 1] != -1 else -100

where `v_r[t]` is the reinforced model's prediction at original position `t` and `v_b[t]` the
baseline's prediction at translated position `mapping[t]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearn.runtime import IGNORE_INDEX

# What Eq. 1 compares: "logit" = the raw logit rows (the paper's literal formula); "logprob" = the
# rows after log_softmax. Logits are defined only up to a constant per row, and Eq. 1's ReLU is not
# invariant to it: when reinforcement lifts a whole row (the demo's reinforced model sits ~1 logit
# above the baseline on average), ReLU(v_r - v_b) is positive almost everywhere and Eq. 1 turns
# into the un-rectified `v_b - alpha * (v_r - v_b)` that the paper warns against.
SPACES = ("logprob", "logit")
DEFAULT_SPACE = "logprob"  # the one default, for every caller (config, CLI, UI)

__all__ = ["generic_logits", "generic_labels", "reindex", "apply_forbidden",
           "forbidden_mask_from_lists", "IGNORE_INDEX", "SPACES", "DEFAULT_SPACE", "in_space",
           "check_space"]


# ============================================================================ pure tensor math

def check_space(space: str, name: str = "space") -> str:
    """`space` if it is one of SPACES, else a ValueError naming the choices."""
    if space not in SPACES:
        raise ValueError(f"{name} must be one of {SPACES}, got {space!r}")
    return space


def in_space(v: torch.Tensor, space: str) -> torch.Tensor:
    """Rows `(..., V)` as float32 in `space` ("logit": unchanged; "logprob": log_softmax)."""
    check_space(space)
    v = v.float()
    return torch.log_softmax(v, dim=-1) if space == "logprob" else v


def generic_logits(v_baseline: torch.Tensor, v_reinforced: torch.Tensor,
                   alpha: float, space: str = DEFAULT_SPACE) -> torch.Tensor:
    """Eq. 1: `v_b - alpha * relu(v_r - v_b)`; shapes `(..., V)` -> `(..., V)` float32.

    Only logits the reinforced model raised above the baseline are pushed down; the others keep
    the baseline value. `alpha = 0` gives the baseline itself. With `space="logprob"` both rows
    are log_softmax-ed first (see `SPACES`); "logit" is the formula on the rows as given.
    """
    vb = in_space(v_baseline, space)
    return vb - alpha * torch.relu(in_space(v_reinforced, space) - vb)


def reindex(v_translated: torch.Tensor, mapping: torch.Tensor) -> torch.Tensor:
    """Rows of the translated-block logits moved to original positions.

    `v_translated`: `(..., T', V)`; `mapping`: `(..., T)` long, -1 where there is no row.
    Returns `(..., T, V)`; rows where `mapping == -1` are zeros (they never become labels).
    """
    mapping = torch.as_tensor(mapping, device=v_translated.device, dtype=torch.long)
    if mapping.shape[:-1] != v_translated.shape[:-2]:
        raise ValueError(f"mapping batch shape {tuple(mapping.shape[:-1])} does not match "
                         f"logits {tuple(v_translated.shape[:-2])}")
    if mapping.numel() and int(mapping.max()) >= v_translated.shape[-2]:
        raise ValueError(f"mapping points to position {int(mapping.max())} but the translated "
                         f"block has {v_translated.shape[-2]} positions")
    index = mapping.clamp(min=0).unsqueeze(-1).expand(*mapping.shape, v_translated.shape[-1])
    out = torch.gather(v_translated, -2, index)
    return out.masked_fill((mapping < 0).unsqueeze(-1), 0)


def apply_forbidden(v_baseline: torch.Tensor, forbidden_mask: torch.Tensor) -> torch.Tensor:
    """Rule 2: set forbidden logits to the mean of their row (mean over the unmodified row).

    `v_baseline`: `(..., V)`; `forbidden_mask`: bool, same shape. Returns a new float32 tensor.
    """
    vb = v_baseline.float()
    mean = vb.mean(dim=-1, keepdim=True).expand_as(vb)
    return torch.where(forbidden_mask.to(vb.device, torch.bool), mean, vb)


def forbidden_mask_from_lists(forbidden: Sequence[Sequence[int]], vocab_size: int,
                              device: torch.device | str | None = None) -> torch.Tensor:
    """`Translation.forbidden` (T lists of token ids) -> bool mask `(T, V)` (ids >= V ignored)."""
    mask = torch.zeros(len(forbidden), vocab_size, dtype=torch.bool, device=device)
    for t, ids in enumerate(forbidden):
        ids = [i for i in ids if 0 <= i < vocab_size]
        if ids:
            mask[t, ids] = True
    return mask


def generic_labels(v_baseline_mapped: torch.Tensor, v_reinforced: torch.Tensor,
                   mapping: torch.Tensor, alphas: Sequence[float],
                   forbidden_mask: torch.Tensor | None = None,
                   space: str = DEFAULT_SPACE) -> dict[float, torch.Tensor]:
    """Causal-LM labels from Eq. 1 for several alphas at once.

    `v_baseline_mapped`: `(..., T, V)` baseline logits on the translated block, already
    `reindex`-ed to original positions; `v_reinforced`: `(..., T, V)` on the original block;
    `mapping`: `(..., T)` (-1 = not trained); `forbidden_mask`: optional bool `(..., T, V)`
    (rule 2, applied to the raw rows before `space`: "logit" or "logprob", see `SPACES`).
    Returns `{alpha: LongTensor (..., T)}` aligned with `input_ids` (see module docstring):
    `labels[..., 0] = -100`, `labels[..., t] = argmax(Eq. 1 at t - 1)` or -100 where
    `mapping[..., t - 1] == -1`.
    """
    if v_baseline_mapped.shape != v_reinforced.shape:
        raise ValueError(f"baseline logits {tuple(v_baseline_mapped.shape)} and reinforced "
                         f"logits {tuple(v_reinforced.shape)} differ in shape")
    mapping = torch.as_tensor(mapping, device=v_reinforced.device, dtype=torch.long)
    if mapping.shape != v_reinforced.shape[:-1]:
        raise ValueError(f"mapping shape {tuple(mapping.shape)} does not match logits "
                         f"{tuple(v_reinforced.shape[:-1])}")
    if not alphas:
        raise ValueError("at least one alpha is needed")
    vb = v_baseline_mapped.float()
    if forbidden_mask is not None:
        vb = apply_forbidden(vb, forbidden_mask)
    vb = in_space(vb, space)
    raised = torch.relu(in_space(v_reinforced, space) - vb)  # (..., T, V), once for all alphas
    keep = mapping[..., :-1] >= 0  # (..., T-1): prediction at t-1 is trained
    out: dict[float, torch.Tensor] = {}
    for alpha in alphas:
        pred = (vb - float(alpha) * raised).argmax(dim=-1)  # (..., T) predicted next token
        labels = torch.full_like(mapping, IGNORE_INDEX)
        labels[..., 1:] = torch.where(keep, pred[..., :-1], IGNORE_INDEX)
        out[float(alpha)] = labels
    return out
