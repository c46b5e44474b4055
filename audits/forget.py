"""Forget quality against a never-trained reference: two-sample KS test (as TOFU)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass
class ForgetQuality:
    """KS test between a model's and the reference's per-probe answer probabilities."""

    statistic: float  # KS distance (0 = same distribution)
    pvalue: float  # forget quality as TOFU reports it (high = indistinguishable)
    n: int  # probes in each sample

    def to_dict(self) -> dict:
        return asdict(self)


def forget_quality(model_probs: Sequence[float], reference_probs: Sequence[float]) -> ForgetQuality:
    """`scipy.stats.ks_2samp` of two samples of answer probabilities (two-sided)."""
    from scipy.stats import ks_2samp

    if not model_probs or not reference_probs:
        raise ValueError("forget quality needs non-empty probability lists")
    res = ks_2samp(list(model_probs), list(reference_probs))
    return ForgetQuality(float(res.statistic), float(res.pvalue), len(model_probs))
