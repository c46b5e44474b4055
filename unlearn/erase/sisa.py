"""SISA (Bourtoule et al. 2021), the finetuning alternative: S disjoint shards, one LoRA finetune
of the model per shard; inference aggregates the S shard models; a deletion retrains its shard.

Each shard is trained on zero-shot prompts (`task.context([], input)` + answer) with the loss on the
answer tokens; aggregation averages the shard models' label probabilities.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from unlearn.erase.evaluate import continuation_logprobs, right_pad
from unlearn.erase.task import Example, Task
from unlearn.finetune import LLAMA_LINEARS


@dataclass
class SISAConfig:
    shards: int = 4  # S disjoint shards, one LoRA adapter each
    epochs: int = 2  # passes over a shard's examples
    batch_size: int = 16
    lr: float = 3e-3  # LoRA learning rate
    lora_r: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.shards < 1 or self.epochs < 1 or self.batch_size < 1 or self.lora_r < 1:
            raise ValueError("shards, epochs, batch_size and lora_r must all be >= 1")


def shard_of(example_id: str, shards: int) -> int:
    """A stable shard index from the example id (so a deletion knows which shard to retrain)."""
    return int(hashlib.sha256(example_id.encode()).hexdigest(), 16) % shards


@dataclass
class SISAModel:
    config: SISAConfig
    members: list[list[Example]]  # training examples per shard
    adapters: list[dict[str, torch.Tensor]]  # LoRA weights per shard
    peft_model: object  # one PeftModel whose LoRA weights are swapped per shard
    train_seconds: list[float] = field(default_factory=list)


def _encode(task: Task, tokenizer, ex: Example) -> tuple[list[int], list[int]]:
    ctx = tokenizer.encode(task.context([], ex.input))
    ans = tokenizer.encode(task.answer.format(output=ex.output), add_special_tokens=False)
    return ctx + ans, [-100] * len(ctx) + ans


def _train_adapter(peft_model, tokenizer, task: Task, examples: list[Example],
                   config: SISAConfig, seed: int) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    torch.manual_seed(seed)
    fresh = {k: (torch.zeros_like(v) if "lora_B" in k else torch.randn_like(v) * 0.02)
             for k, v in get_peft_model_state_dict(peft_model).items()}
    set_peft_model_state_dict(peft_model, fresh)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr)
    rng = np.random.default_rng(seed)
    rows = [_encode(task, tokenizer, ex) for ex in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    peft_model.train()
    for _ in range(config.epochs):
        for start in range(0, len(rows), config.batch_size):
            batch = [rows[i] for i in rng.permutation(len(rows))[start:start + config.batch_size]]
            ids, mask, labels = right_pad([i for i, _ in batch], pad, [lab for _, lab in batch])
            loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    peft_model.eval()
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def train_sisa(model, tokenizer, task: Task, config: SISAConfig,
               on_progress: Callable[[str], None] | None = None) -> SISAModel:
    """Shard the training split and finetune one LoRA adapter per shard (the model is wrapped)."""
    from peft import LoraConfig, get_peft_model

    members: list[list[Example]] = [[] for _ in range(config.shards)]
    for ex in task.train:
        members[shard_of(ex.id, config.shards)].append(ex)
    targets = [n for n in LLAMA_LINEARS if any(m.endswith(n) for m, _ in model.named_modules())]
    lora = LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.0,
                      target_modules=targets or None, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    sisa = SISAModel(config, members, [], peft_model)
    for s, shard in enumerate(members):
        if on_progress:
            on_progress(f"SISA shard {s + 1}/{config.shards}: {len(shard)} examples")
        start = time.perf_counter()
        sisa.adapters.append(_train_adapter(peft_model, tokenizer, task, shard, config,
                                            config.seed * 1000 + s))
        sisa.train_seconds.append(time.perf_counter() - start)
    return sisa


def delete_sisa(sisa: SISAModel, tokenizer, task: Task, example_id: str) -> float:
    """Exactly unlearn one example: retrain its shard without it. Returns the seconds taken."""
    s = shard_of(example_id, sisa.config.shards)
    kept = [ex for ex in sisa.members[s] if ex.id != example_id]
    if len(kept) == len(sisa.members[s]):
        raise KeyError(f"not a training example of this SISA model: {example_id}")
    start = time.perf_counter()
    sisa.members[s] = kept
    sisa.adapters[s] = _train_adapter(sisa.peft_model, tokenizer, task, kept, sisa.config,
                                      sisa.config.seed * 1000 + s)
    return time.perf_counter() - start


def sisa_accuracy(sisa: SISAModel, tokenizer, task: Task, queries: list[Example] | None = None,
                  batch_size: int = 16) -> float:
    """Accuracy of the aggregate: mean over shards of the label distribution (zero-shot prompts)."""
    from peft import set_peft_model_state_dict

    queries = task.test if queries is None else queries
    contexts = [task.context([], q.input) for q in queries]
    probs = np.zeros((len(queries), len(task.labels)))
    for adapter in sisa.adapters:
        set_peft_model_state_dict(sisa.peft_model, adapter)
        scores = continuation_logprobs(sisa.peft_model, tokenizer, contexts,
                                       task.continuations(), batch_size)
        scores = np.exp(scores - scores.max(1, keepdims=True))
        probs += scores / scores.sum(1, keepdims=True)
    gold = np.array([task.labels.index(q.output) for q in queries])
    return float((probs.argmax(1) == gold).mean())
