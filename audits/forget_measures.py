"""Forget measures that do not saturate: truth ratio vs the reference, membership-inference AUC
(loss, Min-K% prob, zlib) with MUSE's PrivLeak, knowledge gap closed, bootstrap intervals.

The pure functions (`auc`, `privleak`, `knowledge_gap_closed`, `bootstrap_ci`, `min_k_score`,
`truth_ratio_of`) hold the math; `truth_ratios` and `mia_scores` score a model with
`audits.scoring.score_continuations` (one definition of a continuation's log-likelihood).
"""

from __future__ import annotations

import bisect
import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from audits.forget import forget_quality
from audits.probes import TriviaProbe
from audits.scoring import score_continuations
from unlearn.runtime import ProgressFn

MIA_METHODS = ("loss", "min_k", "zlib")


def auc(members: Sequence[float], nonmembers: Sequence[float]) -> float:
    """ROC AUC of a score that should be higher for members: P(member > non-member), ties 1/2
    (the Mann-Whitney U statistic over all pairs)."""
    if not members or not nonmembers:
        raise ValueError("AUC needs at least one member and one non-member score")
    non = sorted(nonmembers)
    total = 0.0
    for s in members:
        lo, hi = bisect.bisect_left(non, s), bisect.bisect_right(non, s)
        total += lo + 0.5 * (hi - lo)
    return total / (len(members) * len(non))


def privleak(auc_model: float, auc_reference: float) -> float:
    """MUSE PrivLeak = (AUC_model - AUC_reference) / AUC_reference (0: leaks as the reference;
    > 0: the model still tells target text from held-out text better than the reference)."""
    if auc_reference <= 0:
        raise ValueError(f"reference AUC must be positive, got {auc_reference}")
    return (auc_model - auc_reference) / auc_reference


def knowledge_gap_closed(original: float, unlearned: float, reference: float) -> float | None:
    """(original - unlearned) / (original - reference): 1 = forgot as much as the reference,
    0 = nothing forgotten, > 1 = below the reference. None when original == reference."""
    gap = original - reference
    if gap == 0:
        return None
    return (original - unlearned) / gap


def paired_sign_test(first: Sequence[bool], second: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test of two models on the same items: (items only `first` gets right,
    items only `second` gets right, two-sided p under "either is as likely")."""
    if len(first) != len(second):
        raise ValueError(f"paired results need the same items, got {len(first)} and "
                         f"{len(second)}")
    b = sum(1 for x, y in zip(first, second, strict=True) if x and not y)
    c = sum(1 for x, y in zip(first, second, strict=True) if y and not x)
    n, k = b + c, min(b, c)
    if n == 0:
        return b, c, 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return b, c, min(1.0, 2 * tail)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def bootstrap_ci(values: Sequence[float], stat: Callable[[Sequence[float]], float] = _mean,
                 n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (1 - alpha) of `stat` over `values` resampled with
    replacement, seeded. A single value gives (v, v)."""
    if not values:
        raise ValueError("bootstrap needs at least one value")
    if not 0 < alpha < 1 or n_boot <= 0:
        raise ValueError("need 0 < alpha < 1 and n_boot > 0")
    rng = random.Random(seed)
    vals = list(values)
    n = len(vals)
    stats = sorted(stat([vals[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    lo = stats[int(math.floor(alpha / 2 * (n_boot - 1)))]
    hi = stats[int(math.ceil((1 - alpha / 2) * (n_boot - 1)))]
    return float(lo), float(hi)


def interval(values: Sequence[float], seed: int = 0, n_boot: int = 1000) -> dict:
    """{"mean", "ci_low", "ci_high", "n"} of per-item values (empty: all None)."""
    if not values:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return {"mean": _mean(values), "ci_low": lo, "ci_high": hi, "n": len(values)}


# ---- truth ratio (TOFU) ----

def truth_ratio_of(logprob_correct: float, n_correct: int, logprob_wrong: float,
                   n_wrong: int) -> float:
    """TOFU's truth ratio for one question: P(wrong)^(1/|wrong|) / P(correct)^(1/|correct|).
    Below 1: the model prefers the true answer; about 1: it cannot tell them apart."""
    if n_correct <= 0 or n_wrong <= 0:
        raise ValueError("answers need at least one token")
    return math.exp(logprob_wrong / n_wrong - logprob_correct / n_correct)


@dataclass
class TruthRatioResult:
    """Per-probe truth ratios and their mean; `ks` compares them with the reference's."""

    ratios: list[float]
    mean: float
    ks_statistic: float | None = None  # KS distance to the reference's ratios
    ks_pvalue: float | None = None  # TOFU forget quality (high: like the reference)

    def to_dict(self) -> dict:
        return asdict(self)


def truth_ratios(model, tokenizer, probes: Sequence[TriviaProbe], batch_size: int = 32,
                 on_progress: ProgressFn | None = None) -> TruthRatioResult:
    """Truth ratio of every trivia probe (correct vs distractor continuation)."""
    if not probes:
        raise ValueError("truth ratio needs at least one trivia probe")
    prompts = [p.prompt for p in probes for _ in range(2)]
    conts = [c for p in probes for c in (p.correct, p.distractor)]
    sc = score_continuations(model, tokenizer, prompts, conts, batch_size=batch_size,
                             on_progress=on_progress)
    ratios = [truth_ratio_of(sc[2 * i].logprob, len(sc[2 * i].token_ids),
                             sc[2 * i + 1].logprob, len(sc[2 * i + 1].token_ids))
              for i in range(len(probes))]
    return TruthRatioResult(ratios, _mean(ratios))


def compare_truth_ratios(result: TruthRatioResult, reference: TruthRatioResult) -> None:
    """Fill `result.ks_*` with the KS test of its ratios against the reference's (as TOFU)."""
    q = forget_quality(result.ratios, reference.ratios)
    result.ks_statistic, result.ks_pvalue = q.statistic, q.pvalue


# ---- membership inference ----

def min_k_score(logprobs: Sequence[float], k: float = 0.2) -> float:
    """Min-K% prob (Shi et al. 2024): mean log-probability of the k fraction of least likely
    tokens (at least one). Higher: more likely seen in training."""
    if not logprobs:
        raise ValueError("min-k needs at least one token")
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    n = max(1, int(len(logprobs) * k))
    return _mean(sorted(logprobs)[:n])


def zlib_score(logprobs: Sequence[float], text: str) -> float:
    """Carlini et al. 2021: -(log-perplexity) / zlib entropy of the text. Higher: member."""
    nll = -_mean(logprobs)
    return -nll / len(zlib.compress(text.encode("utf-8")))


def chunks(text: str, chars: int = 400, max_chunks: int | None = None) -> list[str]:
    """Split text at paragraph / sentence boundaries into chunks of about `chars` characters."""
    out, cur = [], ""
    for sent in text.replace("\n", " ").split(". "):
        sent = sent.strip().rstrip(".")
        if not sent:
            continue
        cur = f"{cur} {sent}." if cur else f"{sent}."
        if len(cur) >= chars:
            out.append(cur)
            cur = ""
            if max_chunks is not None and len(out) >= max_chunks:
                return out
    if cur and len(cur) >= chars // 2:
        out.append(cur)
    return out


@dataclass
class MIAResult:
    """Membership-inference scores and AUC per method (members: target text)."""

    auc: dict[str, float]  # method -> AUC (0.5: cannot tell target from held-out text)
    n_members: int
    n_nonmembers: int
    members: dict[str, list[float]] = field(default_factory=dict)
    nonmembers: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _text_scores(model, tokenizer, texts: Sequence[str], k: float, batch_size: int,
                 on_progress: ProgressFn | None) -> dict[str, list[float]]:
    prompts, conts = [], []
    for t in texts:
        head, sep, rest = t.partition(" ")
        if not sep or not rest.strip():
            raise ValueError(f"text too short for membership inference: {t[:60]!r}")
        prompts.append(head)
        conts.append(" " + rest)
    sc = score_continuations(model, tokenizer, prompts, conts, batch_size=batch_size,
                             on_progress=on_progress)
    out = {m: [] for m in MIA_METHODS}
    for s, t in zip(sc, texts, strict=True):
        out["loss"].append(_mean(s.logprobs))
        out["min_k"].append(min_k_score(s.logprobs, k))
        out["zlib"].append(zlib_score(s.logprobs, t))
    return out


def mia_scores(model, tokenizer, members: Sequence[str], nonmembers: Sequence[str],
               k: float = 0.2, batch_size: int = 16,
               on_progress: ProgressFn | None = None) -> MIAResult:
    """Score target (`members`) and held-out (`nonmembers`) texts; AUC per method."""
    if not members or not nonmembers:
        raise ValueError("membership inference needs member and non-member texts")
    ms = _text_scores(model, tokenizer, members, k, batch_size, on_progress)
    ns = _text_scores(model, tokenizer, nonmembers, k, batch_size, on_progress)
    return MIAResult({m: auc(ms[m], ns[m]) for m in MIA_METHODS}, len(members),
                     len(nonmembers), ms, ns)
