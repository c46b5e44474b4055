"""In-context relearning: N true sentences about *other* facts of the target placed before each
probe; the answer probability as a curve over N."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe
from unlearn.runtime import Progress, ProgressFn


@dataclass
class ICLConfig:
    """Context sizes, seed, separator between sentences and batch size."""

    shots: tuple[int, ...] = (0, 1, 3, 8)
    seed: int = 0
    separator: str = " "
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.shots = tuple(sorted(set(self.shots)))
        if not self.shots or any(n < 0 for n in self.shots):
            raise ValueError(f"shots must be non-negative integers, got {self.shots}")


def fact_sentence(probe: ProbabilityProbe) -> str:
    """The true sentence a probability probe encodes: prompt + answer + '.'."""
    return f"{probe.prompt}{probe.answer}".rstrip(".") + "."


def context_for(probe: ProbabilityProbe, pool: Sequence[ProbabilityProbe], n: int,
                rng: random.Random, separator: str = " ") -> str:
    """`n` true sentences from `pool` that never contain the probe's answer (so the context
    states other facts only), seeded; fewer when the pool is smaller."""
    core = probe.answer.strip().lower()
    usable = [q for q in pool if q.id != probe.id and core not in fact_sentence(q).lower()]
    chosen = rng.sample(usable, min(n, len(usable)))
    return "".join(fact_sentence(q) + separator for q in chosen)


@dataclass
class ICLResult:
    curve: dict[int, dict] = field(default_factory=dict)  # N -> {familiarity, top1, n}
    probs: dict[int, list[float]] = field(default_factory=dict)  # N -> per-probe probability

    def at_max(self) -> float | None:
        return self.curve[max(self.curve)]["familiarity"] if self.curve else None

    def to_dict(self) -> dict:
        return {"curve": {str(k): v for k, v in self.curve.items()},
                "probs": {str(k): v for k, v in self.probs.items()}}


def icl_relearn(model, tokenizer, probes: Sequence[ProbabilityProbe],
                config: ICLConfig | None = None, context_pool: Sequence[ProbabilityProbe] = (),
                on_progress: ProgressFn | None = None) -> ICLResult:
    """Answer probability of every probe after N context sentences, for each N of the config.

    The context sentences come from `context_pool` (default: the probes themselves)."""
    config = config or ICLConfig()
    pool = list(context_pool) or list(probes)
    res = ICLResult()
    for step, n in enumerate(config.shots):
        rng = random.Random(config.seed * 1000 + n)
        shifted = [replace(p, prompt=context_for(p, pool, n, rng, config.separator) + p.prompt)
                   for p in probes]
        r = probability_familiarity(model, tokenizer, shifted,
                                    ProbabilityConfig(batch_size=config.batch_size, topk=0))
        res.curve[n] = {"familiarity": r.familiarity, "top1": r.top1, "n": len(probes)}
        res.probs[n] = r.probs
        if on_progress is not None:
            on_progress(Progress("icl", step + 1, len(config.shots), message=f"in-context N={n}"))
    return res
