"""Many-way choice: the right answer among k canon names of the same kind, scored as
continuations of the probe prompt (summed log-likelihood); accuracy against chance."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from audits.adversarial.world import same_kind_options
from audits.probes import ProbabilityProbe
from audits.scoring import score_continuations
from unlearn.runtime import ProgressFn


@dataclass
class KWayConfig:
    """k values (0 = every name of the kind), the headline k, seed and batch size."""

    ks: tuple[int, ...] = (2, 5, 0)
    headline_k: int = 5
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.ks = tuple(self.ks)
        if not self.ks or any(k == 1 or k < 0 for k in self.ks):
            raise ValueError(f"ks must be integers >= 2 (or 0 for all), got {self.ks}")
        if self.headline_k not in self.ks:
            raise ValueError(f"headline_k {self.headline_k} must be one of ks {self.ks}")


@dataclass
class KWayItem:
    id: str
    k: int  # requested k (0 = all)
    options: list[str]
    answer: int  # index of the right option
    chosen: int  # index of the option with the highest log-likelihood
    logprobs: list[float]
    correct: bool  # the right option beats every other strictly (ties count as wrong)


@dataclass
class KWayResult:
    """Per k: accuracy, chance (mean 1/options) and items; probes without a same-kind pool
    are listed in `skipped`."""

    per_k: dict[int, dict] = field(default_factory=dict)  # k -> {accuracy, chance, n}
    items: list[KWayItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def accuracy(self, k: int) -> float | None:
        return (self.per_k.get(k) or {}).get("accuracy")

    def to_dict(self) -> dict:
        return {"per_k": {str(k): v for k, v in self.per_k.items()},
                "items": [asdict(it) for it in self.items], "skipped": list(self.skipped)}


def build_options(probe: ProbabilityProbe, pool: Sequence[str], k: int,
                  rng: random.Random) -> tuple[list[str], int]:
    """The answer plus min(k-1, len(pool)) names drawn from `pool` (all for k=0), shuffled."""
    n = len(pool) if k == 0 else min(k - 1, len(pool))
    opts = [probe.answer, *rng.sample(list(pool), n)]
    rng.shuffle(opts)
    return opts, opts.index(probe.answer)


def kway_accuracy(model, tokenizer, probes: Sequence[ProbabilityProbe], world: dict | None,
                  config: KWayConfig | None = None, side: str = "target",
                  on_progress: ProgressFn | None = None) -> KWayResult:
    """Score every probe's k options for each k of the config (one batched scoring pass)."""
    config = config or KWayConfig()
    res = KWayResult()
    rng = random.Random(config.seed)
    plan = []  # (probe, k, options, answer)
    for p in probes:
        pool = same_kind_options(world, p.answer, side)
        if not pool:
            res.skipped.append(p.id)
            continue
        for k in config.ks:
            opts, ans = build_options(p, pool, k, rng)
            plan.append((p, k, opts, ans))
    prompts = [p.prompt for p, _, opts, _ in plan for _ in opts]
    conts = [o for _, _, opts, _ in plan for o in opts]
    scores = score_continuations(model, tokenizer, prompts, conts, batch_size=config.batch_size,
                                 on_progress=on_progress) if prompts else []
    i = 0
    for p, k, opts, ans in plan:
        lps = [s.logprob for s in scores[i:i + len(opts)]]
        i += len(opts)
        chosen = max(range(len(opts)), key=lambda j: lps[j])
        correct = all(lps[ans] > lp for j, lp in enumerate(lps) if j != ans)
        res.items.append(KWayItem(p.id, k, opts, ans, chosen, lps, correct))
    for k in config.ks:
        its = [it for it in res.items if it.k == k]
        if its:
            res.per_k[k] = {"accuracy": sum(it.correct for it in its) / len(its),
                            "chance": sum(1 / len(it.options) for it in its) / len(its),
                            "n": len(its)}
    return res
