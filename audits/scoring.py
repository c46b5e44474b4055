"""Batched log-likelihood of continuations: one left-padded forward per batch, float32 softmax.

Everything else (token probability, trivia, general multiple choice, the app's top-k view and
the WHP finetune's tracked tokens) is built on `score_continuations`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unlearn.runtime import Progress, ProgressFn, pool_threads, torch_threads


@dataclass
class ContinuationScore:
    """How a model scores one continuation after one prompt."""

    token_ids: list[int]  # continuation tokens (encoded without BOS)
    logprobs: list[float]  # log p(token_t | prompt, tokens_<t), float32
    greedy: list[bool]  # whether each token was the argmax at its position
    first_rank: int | None  # rank of the first continuation token in the next-token dist (1 = top)
    topk: list[tuple[int, float]]  # top-k (token id, prob) right after the prompt

    @property
    def logprob(self) -> float:
        """Sum of token log-probabilities (log of the product of conditionals)."""
        return float(sum(self.logprobs))

    @property
    def prob(self) -> float:
        """Probability of the whole continuation (product of conditional probabilities)."""
        return math.exp(self.logprob)


def model_device(model) -> torch.device:
    """The device of the model's first parameter (where inputs must go)."""
    return next(model.parameters()).device


def max_length(model, default: int = 2048) -> int:
    """The longest sequence the model accepts (config.max_position_embeddings)."""
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", None) or default)


def pad_id(tokenizer) -> int:
    """Token id used for padding (pad, else eos, else 0); padded positions are masked anyway."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Prompt ids with the tokenizer's special tokens (BOS for Llama-style tokenizers)."""
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def encode_continuation(tokenizer, text: str) -> list[int]:
    """Continuation ids without special tokens, so they follow the prompt ids directly."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_pair(tokenizer, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
    """(prompt ids with BOS, continuation ids) such that prompt ids + continuation ids encode
    `prompt + continuation`.

    The continuation's ids are taken from the joint encoding when the prompt's ids are a prefix
    of it (SentencePiece tokenizers such as Llama-2's would otherwise add a spurious "▁" to a
    continuation encoded alone, as lm-eval notes); else it is encoded alone, without specials.
    """
    pid = encode_prompt(tokenizer, prompt)
    if not continuation:
        return pid, []
    whole = encode_prompt(tokenizer, prompt + continuation)
    if len(whole) > len(pid) and whole[:len(pid)] == pid:
        return pid, whole[len(pid):]
    return pid, encode_continuation(tokenizer, continuation)


def _accepts_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def forward_logprobs(model, seqs: Sequence[Sequence[int]], pad: int,
                     keep: int | None = None) -> torch.Tensor:
    """Left-pad `seqs`, run one forward, return float32 log-softmax of the last `keep` positions.

    Position ids follow the attention mask so that a padded row sees the same positions as the
    same sequence alone. Returns (B, keep, V) (keep=None: all T positions).
    """
    device = model_device(model)
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, T - len(s):] = torch.tensor(list(s), dtype=torch.long)
        mask[i, T - len(s):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = {}
    if keep is not None and _accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = keep  # skip the lm_head on positions we never read
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                position_ids=position_ids.to(device), use_cache=False, **kwargs)
    logits = out.logits  # (B, T or keep, V)
    if keep is not None:
        logits = logits[:, -keep:, :]
    return torch.log_softmax(logits.float(), dim=-1)


def score_continuations(model, tokenizer, prompts: Sequence[str], continuations: Sequence[str],
                        batch_size: int = 32, topk: int = 0,
                        on_progress: ProgressFn | None = None) -> list[ContinuationScore]:
    """Score `continuations[i]` after `prompts[i]` for every i, batched.

    The prompt is encoded with special tokens (BOS), the continuation without (`encode_pair`),
    and the two id lists are concatenated. The model only needs `prompt + continuation[:-1]`
    as input (the last L positions predict the L continuation tokens), so pairs that share
    that input (the one-token options of a multiple-choice item) share one row. Rows are sorted
    by length so batches hold similar lengths; too-long inputs lose tokens from the left. An empty
    continuation yields only the next-token distribution (`topk`, `first_rank=None`).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    limit = max_length(model)
    rows: dict[tuple[int, ...], list[int]] = {}  # model input -> indices of the pairs it serves
    conts: list[list[int]] = []
    for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
        pid, cid = encode_pair(tokenizer, p, c)
        if not pid:
            raise ValueError(f"prompt {i} encodes to no tokens; a prompt needs at least one")
        seq = (pid + cid[:-1])[-limit:]
        cid = cid[-len(seq):]  # a continuation longer than the window keeps its end
        conts.append(cid)
        rows.setdefault(tuple(seq), []).append(i)
    order = sorted(rows, key=len, reverse=True)
    results: list[ContinuationScore | None] = [None] * len(conts)
    pad = pad_id(tokenizer)
    model.eval()
    # a batched pool: as many torch threads as free cores (unlearn.runtime)
    threads = pool_threads() if model_device(model).type == "cpu" else torch.get_num_threads()
    with torch.inference_mode(), torch_threads(threads):
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            keep = max(max(len(conts[i]), 1) for seq in batch for i in rows[seq])
            logp = forward_logprobs(model, batch, pad, keep)  # (B, keep, V)
            for row, seq in enumerate(batch):
                for i in rows[seq]:
                    results[i] = _read_scores(logp[row], conts[i], keep, topk)
            if on_progress is not None:
                on_progress(Progress("scoring", min(start + batch_size, len(order)), len(order),
                                     message="scoring"))
    return results  # type: ignore[return-value]


def _read_scores(logp: torch.Tensor, cont: list[int], keep: int, topk: int) -> ContinuationScore:
    """Scores of one continuation from its row's last `keep` log-probs (keep, V)."""
    L = len(cont)
    first = logp[keep - max(L, 1)]  # the distribution right after the prompt
    tok_lp: list[float] = []
    greedy: list[bool] = []
    rank = None
    if L:
        lp = logp[keep - L:]  # (L, V): position t predicts continuation token t
        tgt = torch.tensor(cont, dtype=torch.long, device=logp.device)
        tok_lp = [float(x) for x in lp.gather(-1, tgt[:, None])[:, 0].tolist()]
        greedy = [bool(g) for g in (lp.argmax(-1) == tgt).tolist()]
        rank = int((first > first[cont[0]]).sum().item()) + 1
    top: list[tuple[int, float]] = []
    if topk:
        vals, ids = first.topk(min(topk, first.shape[-1]))
        top = [(int(t), float(v)) for t, v in zip(ids.tolist(), vals.exp().tolist(), strict=True)]
    return ContinuationScore(cont, tok_lp, greedy, rank, top)


def decode_token(tokenizer, token_id: int) -> str:
    """The text of one token (leading space kept)."""
    return tokenizer.decode([token_id], skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)


def next_token_topk(model, tokenizer, prompts: Sequence[str], k: int = 10,
                    batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Top-`k` next tokens and their probabilities after each prompt (one batched forward)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    scores = score_continuations(model, tokenizer, prompts, [""] * len(prompts),
                                 batch_size=batch_size, topk=k)
    return [[(decode_token(tokenizer, t), p) for t, p in s.topk] for s in scores]


def token_probs(model, tokenizer, prompt: str, continuations: Sequence[str],
                batch_size: int = 32) -> list[float]:
    """Probability of each continuation after `prompt` (product of its token conditionals)."""
    for c in continuations:
        if not c:
            raise ValueError("continuations must be non-empty strings")
    scores = score_continuations(model, tokenizer, [prompt] * len(continuations),
                                 list(continuations), batch_size=batch_size)
    return [s.prob for s in scores]
