"""Train a demo language model from scratch on packed token blocks (CPU-friendly loop)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class PretrainConfig:
    """How a demo model is trained from scratch."""

    epochs: int = 8  # passes over the saga corpora (target/neighbour)
    general_passes: float = 0.5  # passes over the general corpus, spread over the epochs
    neighbour_repeats: float = 1.0  # copies of the neighbour saga's stories in each epoch
    seq_len: int = 256  # tokens per packed block
    batch_size: int = 8  # blocks per optimizer step
    lr: float = 3e-3  # peak learning rate (AdamW)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100  # linear warm-up
    weight_decay: float = 0.1
    max_steps: int | None = None  # cap on optimizer steps (tests use a handful)
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: leave as is)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.general_passes < 0:
            raise ValueError(f"general_passes must be >= 0, got {self.general_passes}")
        if not 1 <= self.neighbour_repeats <= 8:
            raise ValueError(f"neighbour_repeats must be in [1, 8], got {self.neighbour_repeats}")
        if self.seq_len < 8 or self.batch_size < 1:
            raise ValueError("seq_len must be >= 8 and batch_size >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


def pack_documents(docs: Sequence[str], tokenizer, seq_len: int) -> torch.Tensor:
    """Tokenize documents (each starts with BOS, ends with EOS) and pack them into blocks.

    Returns a LongTensor `(num_blocks, seq_len)`; the ragged tail is dropped.
    """
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for enc in tokenizer(list(docs), add_special_tokens=True)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"corpus has {len(ids)} tokens, fewer than one block of {seq_len}")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def split_documents(text: str) -> list[str]:
    """Stories/paragraphs are separated by blank lines."""
    return [d.strip() for d in text.split("\n\n") if d.strip()]


def repeat_documents(docs: Sequence[str], times: float, seed: int) -> list[str]:
    """`docs` `times` times: whole copies, then a seeded sample for the fraction (1.0: `docs`)."""
    whole, frac = int(times), times - int(times)
    extra = random.Random(seed).sample(list(docs), round(len(docs) * frac)) if frac else []
    return list(docs) * whole + extra


def _lr_at(step: int, total: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def epoch_schedule(core: torch.Tensor, extra: torch.Tensor | None, epochs: int,
                   extra_passes: float, seed: int) -> torch.Tensor:
    """Order of training blocks: every epoch all `core` blocks plus a slice of `extra` blocks.

    `extra` (the large general corpus) is spread over the epochs so that it is seen
    `extra_passes` times in total; blocks are shuffled within each epoch (seeded).
    Returns `(num_steps_blocks, T)`.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    gen = torch.Generator().manual_seed(seed)
    parts = []
    n_extra = 0 if extra is None else extra.shape[0]
    per_epoch = int(round(n_extra * extra_passes / epochs))
    extra_order = torch.cat([torch.randperm(n_extra, generator=gen)
                             for _ in range(int(extra_passes) + 1)]) if n_extra else None
    for e in range(epochs):
        chunk = [core]
        if extra_order is not None and per_epoch:
            chunk.append(extra[extra_order[e * per_epoch:(e + 1) * per_epoch]])
        epoch_blocks = torch.cat(chunk)
        parts.append(epoch_blocks[torch.randperm(epoch_blocks.shape[0], generator=gen)])
    return torch.cat(parts)


def counterfactual_schedules(core: dict[str, torch.Tensor], extra: torch.Tensor, epochs: int,
                             extra_passes: float, seed: int) -> dict[str, torch.Tensor]:
    """One schedule per model: its saga blocks `epochs` times and the *same* general blocks.

    `core[name]` holds the saga blocks of a model. Every model sees the same slice of `extra`
    (the general corpus) in each epoch, `extra_passes` times in all, so a model that leaves
    out a saga (the reference) is the other's schedule without that saga: fewer steps, the same
    general text and the same neighbour exposure (world v3; in v2 the reference filled the
    target's share with more general text, which gave it a 10% lower perplexity).
    """
    return {name: epoch_schedule(blocks, extra, epochs, extra_passes, seed)
            for name, blocks in core.items()}


def pretrain(model, schedule: torch.Tensor, cfg: PretrainConfig,
             on_progress: Callable[[dict], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> dict:
    """Train `model` with next-token loss on `schedule` `(N, T)` blocks, in order, one pass.

    Build the schedule with `epoch_schedule` (it holds every epoch, already shuffled).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    total = max(1, schedule.shape[0] // cfg.batch_size)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95))
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(total):
        if should_stop is not None and should_stop():
            break
        batch = schedule[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, total, cfg)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_progress is not None:
            on_progress({"step": step + 1, "total": total, "loss": losses[-1]})
    model.eval()
    tail = losses[-max(1, len(losses) // 20):]
    return {"steps": len(losses), "planned_steps": total, "blocks": int(schedule.shape[0]),
            "tokens_seen": len(losses) * cfg.batch_size * cfg.seq_len,
            "final_loss": sum(tail) / len(tail) if tail else None,
            "seconds": round(time.perf_counter() - t0, 2)}
