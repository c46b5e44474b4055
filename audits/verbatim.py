"""Verbatim memorisation: ROUGE-L F between greedy continuations and the true text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from audits.generation import GenerationConfig, generate
from audits.probes import VerbatimProbe
from audits.scoring import encode_continuation
from unlearn.runtime import ProgressFn


@dataclass
class VerbatimConfig:
    """Settings of the verbatim measure."""

    batch_size: int = 16  # prefixes per generate() call
    max_new_tokens: int = 64  # cap on the greedy continuation (else: true continuation length)

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.max_new_tokens <= 0:
            raise ValueError("batch_size and max_new_tokens must be positive")


@dataclass
class VerbatimItem:
    """One passage."""

    id: str
    prefix: str
    continuation: str  # the true continuation
    generated: str  # the model's greedy continuation
    rougeL: float  # ROUGE-L F-measure


@dataclass
class VerbatimResult:
    """Mean ROUGE-L and per-item records."""

    rougeL: float
    items: list[VerbatimItem]

    def to_dict(self) -> dict:
        return {"rougeL": self.rougeL, "items": [asdict(it) for it in self.items]}


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure from the `rouge_score` package (its default tokenisation)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(scorer.score(reference, prediction)["rougeL"].fmeasure)


def verbatim_rouge(model, tokenizer, probes: Sequence[VerbatimProbe],
                   config: VerbatimConfig | None = None,
                   on_progress: ProgressFn | None = None) -> VerbatimResult:
    """Greedy-continue every prefix for as many tokens as its true continuation has."""
    from rouge_score import rouge_scorer

    config = config or VerbatimConfig()
    budgets = [max(1, min(len(encode_continuation(tokenizer, p.continuation)),
                          config.max_new_tokens)) for p in probes]
    gen = GenerationConfig(max_new_tokens=config.max_new_tokens, temperature=0.0,
                           batch_size=config.batch_size)
    outs = generate(model, tokenizer, [p.prefix for p in probes], gen, max_new_tokens=budgets,
                    on_progress=on_progress)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    items = [VerbatimItem(p.id, p.prefix, p.continuation, out,
                          float(scorer.score(p.continuation, out)["rougeL"].fmeasure))
             for p, out in zip(probes, outs, strict=True)]
    return VerbatimResult(sum(it.rougeL for it in items) / max(len(items), 1), items)
