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

    epochs: float = 5.0  # passes over the training blocks (fractional allowed)
    seq_len: int = 256  # tokens per packed block
    batch_size: int = 16  # blocks per optimizer step
    lr: float = 3e-3  # peak learning rate (AdamW)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100  # linear warm-up
    weight_decay: float = 0.1
    max_steps: int | None = None  # cap on optimizer steps (tests use a handful)
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: leave as is)

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.seq_len < 8 or self.batch_size < 1:
            raise ValueError("seq_len must be >= 8 and batch_size >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
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


def _lr_at(step: int, total: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def pretrain(model, blocks: torch.Tensor, cfg: PretrainConfig,
             on_progress: Callable[[dict], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> dict:
    """Train `model` with next-token loss on `blocks` `(N, T)`; returns a summary dict.

    Blocks are reshuffled every epoch with a generator seeded by `cfg.seed`.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    n = blocks.shape[0]
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = max(1, int(round(cfg.epochs * steps_per_epoch)))
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95))
    model.train()
    order: list[int] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    step = 0
    for step in range(total):
        if should_stop is not None and should_stop():
            break
        if len(order) < cfg.batch_size:
            perm = list(range(n))
            rng.shuffle(perm)
            order.extend(perm)
        idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
        batch = blocks[idx]
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
    return {"steps": len(losses), "planned_steps": total, "blocks": n,
            "tokens_seen": len(losses) * cfg.batch_size * cfg.seq_len,
            "final_loss": sum(tail) / len(tail) if tail else None,
            "seconds": round(time.perf_counter() - t0, 2)}
