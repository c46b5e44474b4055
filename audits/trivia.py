"""Two-choice trivia: is the correct continuation more likely than the distractor?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from audits.probes import TriviaProbe
from audits.scoring import score_continuations
from unlearn.runtime import ProgressFn


@dataclass
class TriviaConfig:
    """Settings of the trivia measure."""

    batch_size: int = 32  # sequences (prompt + one choice) per forward pass

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


@dataclass
class TriviaItem:
    """One two-choice question."""

    id: str
    prompt: str
    correct: str
    distractor: str
    logprob_correct: float  # summed token log-likelihood
    logprob_distractor: float
    is_correct: bool  # logprob_correct > logprob_distractor
    is_correct_norm: bool  # same with log-likelihoods divided by the number of tokens


@dataclass
class TriviaResult:
    """Accuracy (summed log-likelihood) and the length-normalised variant."""

    accuracy: float
    accuracy_norm: float
    items: list[TriviaItem]

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "accuracy_norm": self.accuracy_norm,
                "items": [asdict(it) for it in self.items]}


def trivia_accuracy(model, tokenizer, probes: Sequence[TriviaProbe],
                    config: TriviaConfig | None = None,
                    on_progress: ProgressFn | None = None) -> TriviaResult:
    """Score both continuations of every probe in batches; ties count as wrong."""
    config = config or TriviaConfig()
    prompts = [p.prompt for p in probes for _ in range(2)]
    conts = [c for p in probes for c in (p.correct, p.distractor)]
    scores = score_continuations(model, tokenizer, prompts, conts,
                                 batch_size=config.batch_size, on_progress=on_progress)
    items = []
    for i, p in enumerate(probes):
        sc, sd = scores[2 * i], scores[2 * i + 1]
        nc, nd = max(len(sc.token_ids), 1), max(len(sd.token_ids), 1)
        items.append(TriviaItem(p.id, p.prompt, p.correct, p.distractor, sc.logprob, sd.logprob,
                                sc.logprob > sd.logprob, sc.logprob / nc > sd.logprob / nd))
    n = max(len(items), 1)
    return TriviaResult(sum(it.is_correct for it in items) / n,
                        sum(it.is_correct_norm for it in items) / n, items)
