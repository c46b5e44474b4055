"""Batched, seeded generation with left padding; returns the completions only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from audits.scoring import model_device, pad_id
from unlearn.runtime import Progress, ProgressFn


@dataclass
class GenerationConfig:
    """How completions are sampled."""

    max_new_tokens: int = 24  # tokens generated after each prompt
    temperature: float = 1.0  # sampling temperature; 0 means greedy decoding
    top_p: float = 0.9  # nucleus sampling mass
    batch_size: int = 32  # prompts per generate() call
    seed: int = 0  # torch seed, reset before each batch so runs repeat exactly

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


def generate(model, tokenizer, prompts: Sequence[str], config: GenerationConfig | None = None,
             max_new_tokens: Sequence[int] | None = None,
             on_progress: ProgressFn | None = None) -> list[str]:
    """Complete each prompt; returns the generated text only (prompt stripped, specials dropped).

    `max_new_tokens` optionally gives a per-prompt budget (e.g. the length of a true
    continuation): a batch generates up to its largest budget and each completion is cut to its
    own. Batches are seeded with `config.seed + batch index`.
    """
    config = config or GenerationConfig()
    if max_new_tokens is not None and len(max_new_tokens) != len(prompts):
        raise ValueError("max_new_tokens must have one budget per prompt")
    budgets = list(max_new_tokens) if max_new_tokens is not None else (
        [config.max_new_tokens] * len(prompts))
    device = model_device(model)
    pad = pad_id(tokenizer)
    side = getattr(tokenizer, "padding_side", "left")
    tokenizer.padding_side = "left"  # decoder-only generation must pad on the left
    sample = config.temperature > 0
    gen_kwargs = {"do_sample": sample, "pad_token_id": pad}
    if sample:
        gen_kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
    out: list[str] = []
    model.eval()
    try:
        with torch.inference_mode():
            for b, start in enumerate(range(0, len(prompts), config.batch_size)):
                batch = list(prompts[start:start + config.batch_size])
                budget = budgets[start:start + config.batch_size]
                enc = tokenizer(batch, return_tensors="pt", padding=True)
                enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids",
                                                                      "attention_mask")}
                torch.manual_seed(config.seed + b)
                seqs = model.generate(**enc, max_new_tokens=max(budget), **gen_kwargs)
                new = seqs[:, enc["input_ids"].shape[1]:]  # (B, new_tokens)
                for row, n in zip(new.tolist(), budget, strict=True):
                    out.append(tokenizer.decode(row[:n], skip_special_tokens=True))
                if on_progress is not None:
                    on_progress(Progress("generation", min(start + config.batch_size, len(prompts)),
                                         len(prompts), message="generating"))
    finally:
        tokenizer.padding_side = side
    return out
