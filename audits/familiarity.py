"""Completion familiarity: sample completions, grade them 0-3, score (5*#3 + #2) / N."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from audits.generation import GenerationConfig, generate
from audits.judges import Judge
from audits.probes import CompletionProbe
from unlearn.runtime import ProgressFn


@dataclass
class CompletionConfig:
    """Sampling settings of the completion-familiarity measure."""

    generation: GenerationConfig = field(default_factory=GenerationConfig)  # see GenerationConfig
    samples_per_prompt: int = 1  # completions sampled (and graded) per prompt

    def __post_init__(self) -> None:
        if isinstance(self.generation, dict):
            self.generation = GenerationConfig(**self.generation)
        if self.samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt must be >= 1, got {self.samples_per_prompt}")


@dataclass
class GradedCompletion:
    """One graded completion."""

    id: str
    prompt: str
    completion: str
    grade: int
    rationale: str


@dataclass
class CompletionResult:
    """Familiarity score, grade distribution and per-item records of one model."""

    score: float  # (5*#3 + #2) / N
    distribution: dict[int, int]  # grade -> count, grades 0..3
    n: int
    items: list[GradedCompletion]

    def to_dict(self) -> dict:
        return {"score": self.score, "n": self.n,
                "distribution": {str(k): v for k, v in self.distribution.items()},
                "items": [asdict(it) for it in self.items]}


def familiarity_score(grades: Sequence[int]) -> float:
    """The paper's completion familiarity: (5 * #grade-3 + #grade-2) / N (0.0 when N = 0)."""
    for g in grades:
        if g not in (0, 1, 2, 3):
            raise ValueError(f"grades must be 0-3, got {g!r}")
    if not grades:
        return 0.0
    c = Counter(grades)
    return (5 * c[3] + c[2]) / len(grades)


def grade_distribution(grades: Sequence[int]) -> dict[int, int]:
    """Count of each grade 0..3."""
    c = Counter(grades)
    return {g: c[g] for g in range(4)}


def completion_familiarity(model, tokenizer, probes: Sequence[CompletionProbe], judge: Judge,
                           config: CompletionConfig | None = None,
                           on_progress: ProgressFn | None = None) -> CompletionResult:
    """Sample completions of every probe prompt (seeded, batched), grade each with `judge`."""
    config = config or CompletionConfig()
    prompts = [p.prompt for p in probes for _ in range(config.samples_per_prompt)]
    ids = [p.id for p in probes for _ in range(config.samples_per_prompt)]
    completions = generate(model, tokenizer, prompts, config.generation, on_progress=on_progress)
    items = []
    for pid, prompt, comp in zip(ids, prompts, completions, strict=True):
        g = judge.grade(prompt, comp)
        items.append(GradedCompletion(pid, prompt, comp, g.grade, g.rationale))
    grades = [it.grade for it in items]
    return CompletionResult(familiarity_score(grades), grade_distribution(grades), len(grades),
                            items)
