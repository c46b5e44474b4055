"""Finetune relearning (Lynch et al. 2024): finetune a copy of the model on a *subset* of the
target text for a few steps and measure the facts whose answers never appear in that text.

Suppressed knowledge comes back on the held-out facts; knowledge that was never there (the
reference) does not. LoRA or full finetune; seeded; results cached on disk by a key of the
model's weights, the data, the probes and the config.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from audits.adversarial.world import name_pattern
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe
from audits.scoring import model_device
from unlearn.runtime import Progress, ProgressFn

METHODS = ("full", "lora")


@dataclass
class RelearnConfig:
    """Step counts to measure at, optimiser, block size, LoRA rank, split and seed."""

    steps: tuple[int, ...] = (0, 10, 25, 50)
    method: str = "full"  # "full" or "lora"
    lr: float = 1e-4
    batch_size: int = 8
    block_size: int = 256
    lora_r: int = 8
    lora_alpha: int = 16
    fraction: float = 0.5  # share of the distinct answers whose text is kept for relearning
    seed: int = 0
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        self.steps = tuple(sorted(set(int(s) for s in self.steps)))
        if not self.steps or self.steps[0] < 0:
            raise ValueError(f"steps must be non-negative integers, got {self.steps}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        for name in ("lr", "batch_size", "block_size", "lora_r", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class RelearnSplit:
    """Relearning paragraphs and the probes split by whether their answer occurs in them."""

    paragraphs: list[str]
    trained: list[ProbabilityProbe]  # answer occurs in the relearning text
    heldout: list[ProbabilityProbe]  # answer never occurs in it


def split_for_relearning(text: str, probes: Sequence[ProbabilityProbe], fraction: float = 0.5,
                         seed: int = 0, given: bool = False) -> RelearnSplit:
    """Choose relearning paragraphs and split the probes.

    `given=False` (target text): the distinct answers are shuffled (seeded) and a `fraction`
    kept; paragraphs that mention a kept answer and no other answer form the relearning text.
    `given=True`: the text is the user's relearning file, every paragraph kept. Either way the
    held-out probes are those whose answer (word-bounded) never occurs in the kept text.
    """
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not paras:
        raise ValueError("relearning text holds no paragraphs")
    if not given:
        answers = sorted({p.answer.strip() for p in probes})
        random.Random(seed).shuffle(answers)
        keep = set(answers[:max(1, int(len(answers) * fraction))])
        drop = name_pattern([a for a in answers if a not in keep])
        kept = name_pattern(sorted(keep))
        paras = [p for p in paras if kept and kept.search(p) and not (drop and drop.search(p))]
        if not paras:
            raise ValueError("no paragraph mentions only the kept answers; lower the fraction "
                             "or give a relearning file")
    joined = "\n\n".join(paras)
    trained, heldout = [], []
    for p in probes:
        pat = name_pattern([p.answer.strip()])
        (trained if pat and pat.search(joined) else heldout).append(p)
    return RelearnSplit(paras, trained, heldout)


def blocks(tokenizer, paragraphs: Sequence[str], block_size: int) -> torch.Tensor:
    """The paragraphs tokenised, joined by EOS and cut into full blocks: (N, block_size)."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for p in paragraphs:
        ids += tokenizer(p, add_special_tokens=False)["input_ids"]
        if eos is not None:
            ids.append(eos)
    n = len(ids) // block_size
    if n == 0:
        raise ValueError(f"relearning text has {len(ids)} tokens, less than one block of "
                         f"{block_size}")
    return torch.tensor(ids[:n * block_size]).view(n, block_size)


def fingerprint(model) -> str:
    """A short hash of the model's weights (sum and first values of every tensor)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        flat = t.detach().float().flatten()
        h.update(f"{name}:{tuple(t.shape)}:{float(flat.sum()):.6e}:"
                 f"{flat[:4].tolist()}".encode())
    return h.hexdigest()[:16]


@dataclass
class RelearnResult:
    """Curves over finetune steps: mean answer probability and top-1 of held-out and trained
    probes."""

    steps: list[int]
    heldout: list[float]
    trained: list[float]
    heldout_top1: list[float]
    trained_top1: list[float]
    n_heldout: int
    n_trained: int
    n_blocks: int
    losses: list[float] = field(default_factory=list)  # training loss per step
    method: str = "full"
    cached: bool = False

    def final_heldout(self) -> float | None:
        return self.heldout[-1] if self.heldout else None

    def to_dict(self) -> dict:
        return asdict(self)


def _trainable(model, config: RelearnConfig):
    work = copy.deepcopy(model)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        work = get_peft_model(work, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                               target_modules="all-linear", lora_dropout=0.0))
    for p in work.parameters():
        if config.method == "full":
            p.requires_grad_(True)
    return work


def _measure(model, tokenizer, split: RelearnSplit, bs: int) -> tuple[float, float, float, float]:
    cfg = ProbabilityConfig(batch_size=bs, topk=0)
    out = []
    for probes in (split.heldout, split.trained):
        if probes:
            r = probability_familiarity(model, tokenizer, probes, cfg)
            out += [r.familiarity, r.top1]
        else:
            out += [float("nan"), float("nan")]
    return out[0], out[2], out[1], out[3]


def relearn(model, tokenizer, split: RelearnSplit, config: RelearnConfig | None = None,
            cache_dir: str | Path | None = None, on_progress: ProgressFn | None = None,
            should_stop=None) -> RelearnResult:
    """Finetune a copy of `model` on `split.paragraphs` and measure the probes at every step
    count of the config. The model passed in is left unchanged. `should_stop()` (optional)
    cancels between steps with `InterruptedError`."""
    config = config or RelearnConfig()
    data = blocks(tokenizer, split.paragraphs, config.block_size)
    key = hashlib.sha256(json.dumps({
        "model": fingerprint(model), "config": asdict(config),
        "data": hashlib.sha256("\n\n".join(split.paragraphs).encode()).hexdigest(),
        "probes": [[p.prompt, p.answer] for p in split.heldout + split.trained],
    }, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"relearn-{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        res = RelearnResult(**json.loads(path.read_text(encoding="utf-8")))
        res.cached = True
        return res
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    work = _trainable(model, config)
    params = [p for p in work.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    device = model_device(model)
    res = RelearnResult([], [], [], [], [], len(split.heldout), len(split.trained), len(data),
                        method=config.method)
    order = torch.randperm(len(data), generator=gen).tolist()
    cursor, last = 0, config.steps[-1]
    for step in range(last + 1):
        if step in config.steps:
            h, t, h1, t1 = _measure(work, tokenizer, split, config.eval_batch_size)
            res.steps.append(step)
            res.heldout.append(h)
            res.trained.append(t)
            res.heldout_top1.append(h1)
            res.trained_top1.append(t1)
        if step == last:
            break
        if should_stop is not None and should_stop():
            raise InterruptedError("relearning cancelled")
        idx = []
        for _ in range(config.batch_size):
            if cursor == len(order):
                order, cursor = torch.randperm(len(data), generator=gen).tolist(), 0
            idx.append(order[cursor])
            cursor += 1
        batch = data[idx].to(device)
        work.train()
        loss = work(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        res.losses.append(float(loss.detach()))
        if on_progress is not None:
            on_progress(Progress("relearn", step + 1, last, res.losses[-1],
                                 f"relearn step {step + 1}/{last} loss {res.losses[-1]:.3f}"))
    del work
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({k: v for k, v in asdict(res).items() if k != "cached"}, fh)
        os.replace(tmp, path)
    return res
