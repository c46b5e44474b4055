"""Checkpoint evaluation during a finetune: what to measure, and `RUN_DIR/evals.jsonl`.

One line per evaluated step (step 0 = before training), written by whatever evaluator the caller
hands in (the audits' one: `audits.checkpoint`), e.g.
`{"step": 10, "probability_familiarity": 0.1, "probability_top1": 0.2,
  "general_perplexity": 30.1, "tracked": [{"prompt": "...", "token": " Pip", "prob": 0.2}, ...]}`
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn.options import at_least, existing_file, option, validate


@dataclass
class EvalConfig:
    """What to measure at checkpoints (nothing when both `probes` and `text` are None)."""

    probes: str | None = option(None, "probability probes (JSONL prompt/answer) scored at "
                                "checkpoints", parse=existing_file, metavar="FILE")
    text: str | None = option(None, "text whose perplexity is measured at checkpoints",
                              parse=existing_file, metavar="FILE")
    every: int = option(0, "evaluate every N steps (0: before and after training only)",
                        check=at_least(0))
    max_text_tokens: int = option(4096, "perplexity uses at most this many tokens of the text",
                                  check=at_least(2))
    block_size: int = option(256, "perplexity window", check=at_least(2))
    evaluator: str | None = option(
        None, "checkpoint evaluator factory as MODULE:FUNCTION, e.g. "
        "audits.checkpoint:checkpoint_evaluator (needed with --eval-probes/--eval-text; "
        "unlearn itself measures nothing)", metavar="MODULE:FUNCTION")
    tracked: list[tuple[str, str]] | None = None  # (prompt, token) pairs; None = from probes
    n_tracked_probes: int = 3  # default tracked pairs: first N probes x (answer, " the")
    extra_tracked_tokens: tuple[str, ...] = field(default=(" the",))

    def __post_init__(self) -> None:
        validate(self)

    @property
    def enabled(self) -> bool:
        return self.probes is not None or self.text is not None

    def check_files(self) -> None:
        """The probe and text files exist and a named evaluator resolves (checked where they are
        used, not at construction)."""
        for name in ("probes", "text"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"eval {name} file not found: {value}")
        if self.enabled and self.evaluator:
            resolve_factory(self.evaluator)


def load_probes(path: str | Path) -> list[dict]:
    """Probability probes: JSONL lines with "prompt" and "answer" (answer has its leading space)."""
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "prompt" not in row or "answer" not in row:
            raise ValueError(f"{path}:{i}: a probe needs 'prompt' and 'answer'")
        rows.append(row)
    return rows


def tracked_pairs(config: EvalConfig, probes: list[dict] | None) -> list[tuple[str, str]]:
    """The (prompt, token) pairs to track: explicit ones, else first probes x (answer, extras)."""
    if config.tracked is not None:
        return [tuple(p) for p in config.tracked]
    pairs: list[tuple[str, str]] = []
    for probe in (probes or [])[:config.n_tracked_probes]:
        pairs.append((probe["prompt"], probe["answer"]))
        pairs += [(probe["prompt"], tok) for tok in config.extra_tracked_tokens]
    return pairs


# A checkpoint evaluator measures a model at an optimizer step: `evaluator(model, step) -> record`
# (a JSON-ready dict with "step"). The pipeline gets a factory building one for a tokenizer; the
# audits provide it (`audits.checkpoint.checkpoint_evaluator`), `unlearn` never imports them.
CheckpointEvaluator = Callable[[Any, int], dict]
EvaluatorFactory = Callable[[EvalConfig, Any], CheckpointEvaluator]


def resolve_factory(spec: str) -> EvaluatorFactory:
    """The callable named by `MODULE:FUNCTION` (a plug-in chosen by the caller, so that `unlearn`
    depends on no measuring package)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"evaluator must be MODULE:FUNCTION, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"evaluator module {module_name!r} cannot be imported: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"evaluator {spec!r}: {module_name} has no callable {attr!r}")
    return factory


def make_evaluator(config: EvalConfig | None, factory: EvaluatorFactory | None,
                   tokenizer) -> CheckpointEvaluator | None:
    """The evaluator for a run: None when `config` measures nothing; else the handed-in factory's
    or the one `config.evaluator` names; an error when it asks for measurements without one."""
    if config is None or not config.enabled:
        return None
    config.check_files()
    if factory is None and config.evaluator:
        factory = resolve_factory(config.evaluator)
    if factory is None:
        raise ValueError("checkpoint evaluation (probes/text) needs an evaluator: add "
                         "--evaluator audits.checkpoint:checkpoint_evaluator")
    return factory(config, tokenizer)


def append_eval(path: str | Path, record: dict) -> None:
    """Append one JSON line to `evals.jsonl` (flushed: plots may read it while training runs)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_evals(path: str | Path) -> list[dict]:
    """All records of an `evals.jsonl` (an absent file is an empty list)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
