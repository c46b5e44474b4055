"""Audit scores at finetune checkpoints, appended to `RUN_DIR/evals.jsonl`.

One line per evaluated step (step 0 = before training):
`{"step": 10, "probability_familiarity": 0.1, "probability_top1": 0.2,
  "general_perplexity": 30.1, "tracked": [{"prompt": "...", "token": " Pip", "prob": 0.2}, ...]}`
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class EvalConfig:
    """What to measure at checkpoints (nothing when both `probes` and `text` are None)."""

    probes: str | None = None  # probability probe file (JSONL lines {"prompt", "answer"})
    text: str | None = None  # text file for general perplexity (held-out general text)
    every: int = 0  # evaluate every N optimizer steps (0 = only before and after training)
    max_text_tokens: int = 4096  # perplexity uses at most this many tokens of `text`
    block_size: int = 256  # perplexity window
    tracked: list[tuple[str, str]] | None = None  # (prompt, token) pairs; None = from probes
    n_tracked_probes: int = 3  # default tracked pairs: first N probes x (answer, " the")
    extra_tracked_tokens: tuple[str, ...] = field(default=(" the",))

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"eval every must be >= 0, got {self.every}")
        for name in ("probes", "text"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"eval {name} file not found: {value}")
        if self.max_text_tokens < 2 or self.block_size < 2:
            raise ValueError("max_text_tokens and block_size must be >= 2")

    @property
    def enabled(self) -> bool:
        return self.probes is not None or self.text is not None


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


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def next_token_probs(model, tokenizer, prompts: list[str], batch_size: int = 16) -> torch.Tensor:
    """Next-token distribution after each prompt, (N, V) float32 (prompts encoded with BOS)."""
    out = []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for i in range(0, len(prompts), batch_size):
        encs = [tokenizer(p)["input_ids"] for p in prompts[i:i + batch_size]]
        width = max(len(e) for e in encs)
        ids = torch.tensor([e + [pad_id] * (width - len(e)) for e in encs])  # right pad
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encs])
        logits = model(input_ids=ids.to(_device(model)),
                       attention_mask=mask.to(_device(model))).logits  # (B, T, V)
        last = torch.tensor([len(e) - 1 for e in encs], device=logits.device)
        rows = logits[torch.arange(len(encs), device=logits.device), last].float()
        out.append(torch.softmax(rows, dim=-1).cpu())
    return torch.cat(out)


def _first_token(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"{text!r} encodes to no tokens")
    return ids[0]


def probability_scores(model, tokenizer, probes: list[dict]) -> dict[str, float]:
    """Token-probability familiarity: mean answer probability and top-1 rate.

    Uses `audits.probability` (answer probability = product of its tokens' conditionals) when
    the audits package is importable; otherwise the first answer token's probability.
    """
    try:
        from audits.probability import ProbabilityConfig, probability_familiarity
        from audits.probes import ProbabilityProbe
    except ImportError:
        return _first_token_scores(model, tokenizer, probes)
    items = [ProbabilityProbe(str(p.get("id", i)), p["prompt"], p["answer"])
             for i, p in enumerate(probes)]
    result = probability_familiarity(model, tokenizer, items, ProbabilityConfig(topk=0))
    return {"probability_familiarity": float(result.familiarity),
            "probability_top1": float(result.top1)}


def _first_token_scores(model, tokenizer, probes: list[dict]) -> dict[str, float]:
    probs = next_token_probs(model, tokenizer, [p["prompt"] for p in probes])
    answers = torch.tensor([_first_token(tokenizer, p["answer"]) for p in probes])
    p_answer = probs[torch.arange(len(probes)), answers]
    top1 = (probs.argmax(-1) == answers).float()
    return {"probability_familiarity": float(p_answer.mean()),
            "probability_top1": float(top1.mean())}


@torch.inference_mode()
def perplexity(model, tokenizer, text: str, block_size: int = 256,
               max_tokens: int = 4096) -> float:
    """exp(mean token NLL) of `text` in non-overlapping windows of `block_size` tokens.

    Uses `audits.general.perplexity` when the audits package is importable.
    """
    try:
        from audits.general import GeneralConfig
        from audits.general import perplexity as audit_perplexity
    except ImportError:
        pass
    else:
        windows = max(1, math.ceil(max_tokens / max(block_size - 1, 1)))
        cfg = GeneralConfig(block_size=block_size, max_windows=windows)
        return float(audit_perplexity(model, tokenizer, text, cfg).perplexity)
    from unlearn.data import token_blocks

    blocks = token_blocks(tokenizer, text, block_size, min_block=2)
    total, count, budget = 0.0, 0, max_tokens
    for block in blocks:
        if budget <= 1:
            break
        block = block[:budget]
        budget -= len(block)
        ids = torch.tensor([block], device=_device(model))
        logits = model(input_ids=ids).logits[0, :-1].float()  # (T-1, V)
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum")
        total += float(nll)
        count += len(block) - 1
    return math.exp(total / max(count, 1))


def tracked_pairs(config: EvalConfig, probes: list[dict] | None) -> list[tuple[str, str]]:
    """The (prompt, token) pairs to track: explicit ones, else first probes x (answer, extras)."""
    if config.tracked is not None:
        return [tuple(p) for p in config.tracked]
    pairs: list[tuple[str, str]] = []
    for probe in (probes or [])[:config.n_tracked_probes]:
        pairs.append((probe["prompt"], probe["answer"]))
        pairs += [(probe["prompt"], tok) for tok in config.extra_tracked_tokens]
    return pairs


def tracked_probs(model, tokenizer, pairs: list[tuple[str, str]]) -> list[dict]:
    """Probability of each `token` (a short continuation) right after its `prompt`."""
    if not pairs:
        return []
    try:
        from audits.scoring import score_continuations
    except ImportError:
        pass
    else:
        scores = score_continuations(model, tokenizer, [p for p, _ in pairs],
                                     [t for _, t in pairs])
        return [{"prompt": prompt, "token": tok, "prob": float(s.prob)}
                for (prompt, tok), s in zip(pairs, scores, strict=True)]
    probs = next_token_probs(model, tokenizer, [p for p, _ in pairs])
    return [{"prompt": prompt, "token": tok, "prob": float(probs[i, _first_token(tokenizer, tok)])}
            for i, (prompt, tok) in enumerate(pairs)]


class CheckpointEvaluator:
    """Measures one model at a given step with the audits (or the small fallbacks above)."""

    def __init__(self, config: EvalConfig, tokenizer):
        self.config = config
        self.tokenizer = tokenizer
        self.probes = load_probes(config.probes) if config.probes else None
        self.text = Path(config.text).read_text(encoding="utf-8") if config.text else None
        self.pairs = tracked_pairs(config, self.probes)

    def __call__(self, model, step: int) -> dict:
        was_training = model.training
        model.eval()
        try:
            record: dict = {"step": int(step)}
            if self.probes:
                record.update(probability_scores(model, self.tokenizer, self.probes))
            if self.text:
                record["general_perplexity"] = perplexity(
                    model, self.tokenizer, self.text, self.config.block_size,
                    self.config.max_text_tokens)
            record["tracked"] = tracked_probs(model, self.tokenizer, self.pairs)
        finally:
            model.train(was_training)
        return record


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
