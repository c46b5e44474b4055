"""Audit scores of a model being finetuned, for `evals.jsonl` (the pipeline's checkpoint hook).

`checkpoint_evaluator(config, tokenizer)` builds the `unlearn.evaluate.CheckpointEvaluator` the
pipeline calls at step 0, every `config.every` steps and at the end. The numbers are the audits'
own: answer probability = product of the answer tokens' conditionals (`audits.probability`),
perplexity in windows of `config.block_size` tokens (`audits.general`), tracked continuations
scored like any other continuation (`audits.scoring`).

Record: `{"step": 10, "probability_familiarity": 0.1, "probability_top1": 0.2,
"general_perplexity": 30.1, "tracked": [{"prompt": "...", "token": " Pip", "prob": 0.2}, ...]}`
"""

from __future__ import annotations

import math
from pathlib import Path

from audits.general import GeneralConfig, perplexity
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe
from audits.scoring import score_continuations
from unlearn.evaluate import EvalConfig, load_probes, tracked_pairs

__all__ = ["checkpoint_evaluator", "AuditCheckpointEvaluator"]


class AuditCheckpointEvaluator:
    """Measures one model at a given step (callable `(model, step) -> record`)."""

    def __init__(self, config: EvalConfig, tokenizer):
        self.config = config
        self.tokenizer = tokenizer
        raw = load_probes(config.probes) if config.probes else []
        self.probes = [ProbabilityProbe(str(p.get("id", i)), p["prompt"], p["answer"])
                       for i, p in enumerate(raw)]
        self.text = Path(config.text).read_text(encoding="utf-8") if config.text else None
        self.pairs = tracked_pairs(config, raw)
        windows = max(1, math.ceil(config.max_text_tokens / max(config.block_size - 1, 1)))
        self.general = GeneralConfig(block_size=config.block_size, max_windows=windows)

    def __call__(self, model, step: int) -> dict:
        was_training = model.training
        model.eval()
        try:
            record: dict = {"step": int(step)}
            if self.probes:
                result = probability_familiarity(model, self.tokenizer, self.probes,
                                                 ProbabilityConfig(topk=0))
                record["probability_familiarity"] = float(result.familiarity)
                record["probability_top1"] = float(result.top1)
            if self.text:
                record["general_perplexity"] = float(
                    perplexity(model, self.tokenizer, self.text, self.general).perplexity)
            record["tracked"] = []
            if self.pairs:
                scores = score_continuations(model, self.tokenizer, [p for p, _ in self.pairs],
                                             [t for _, t in self.pairs])
                record["tracked"] = [{"prompt": prompt, "token": tok, "prob": float(s.prob)}
                                     for (prompt, tok), s in zip(self.pairs, scores, strict=True)]
        finally:
            model.train(was_training)
        return record


def checkpoint_evaluator(config: EvalConfig, tokenizer) -> AuditCheckpointEvaluator:
    """The `unlearn.evaluate.EvaluatorFactory` built from the audits."""
    return AuditCheckpointEvaluator(config, tokenizer)
