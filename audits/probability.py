"""Token-probability familiarity: the probability a model gives to target-specific answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from audits.probes import ProbabilityProbe
from audits.scoring import decode_token, score_continuations
from unlearn.runtime import ProgressFn


@dataclass
class ProbabilityConfig:
    """Settings of the token-probability measure."""

    batch_size: int = 32  # prompts per forward pass
    topk: int = 10  # next tokens recorded per prompt

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.topk < 0:
            raise ValueError(f"topk must be >= 0, got {self.topk}")


@dataclass
class ProbabilityItem:
    """How one model scores one probe's answer."""

    id: str
    prompt: str
    answer: str
    prob: float  # product of the answer tokens' conditional probabilities
    n_tokens: int  # answer length in tokens
    rank: int  # rank of the answer's first token in the next-token distribution (1 = top)
    top1: bool  # greedy decoding produces the answer (every answer token is the argmax)
    topk: list[tuple[str, float]]  # top next tokens after the prompt with probabilities


@dataclass
class ProbabilityResult:
    """Aggregates and per-probe records."""

    familiarity: float  # mean answer probability
    top1: float  # fraction of probes with top1 == True
    items: list[ProbabilityItem]

    @property
    def probs(self) -> list[float]:
        return [it.prob for it in self.items]

    def to_dict(self) -> dict:
        return {"familiarity": self.familiarity, "top1": self.top1,
                "items": [asdict(it) for it in self.items]}


def probability_familiarity(model, tokenizer, probes: Sequence[ProbabilityProbe],
                            config: ProbabilityConfig | None = None,
                            on_progress: ProgressFn | None = None) -> ProbabilityResult:
    """Score every probe's answer after its prompt in left-padded batches (float32 softmax)."""
    config = config or ProbabilityConfig()
    scores = score_continuations(model, tokenizer, [p.prompt for p in probes],
                                 [p.answer for p in probes], batch_size=config.batch_size,
                                 topk=config.topk, on_progress=on_progress)
    items = []
    for p, s in zip(probes, scores, strict=True):
        items.append(ProbabilityItem(
            p.id, p.prompt, p.answer, s.prob, len(s.token_ids), int(s.first_rank or 0),
            bool(s.greedy) and all(s.greedy),
            [(decode_token(tokenizer, t), prob) for t, prob in s.topk]))
    n = max(len(items), 1)
    return ProbabilityResult(sum(it.prob for it in items) / n,
                             sum(it.top1 for it in items) / n, items)
