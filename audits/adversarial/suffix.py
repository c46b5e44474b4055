"""Bounded adversarial string search (GCG-like, Zou et al. 2023): greedy token substitution
guided by the gradient of the answer loss with respect to the one-hot adversarial tokens.

One string is searched for a set of probes (a universal prefix or suffix); it is then scored on
the same probes and on held-out probes. Tokens of the answers (and special tokens) are never
candidates, so the string cannot simply spell the answers out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe
from audits.scoring import (
    encode_continuation,
    encode_pair,
    forward_logprobs,
    model_device,
    pad_id,
)
from unlearn.runtime import Progress, ProgressFn

POSITIONS = ("prefix", "suffix")


@dataclass
class SuffixConfig:
    """Budget of the search: string length, steps, candidates per step, top-k per position."""

    n_tokens: int = 6
    steps: int = 20
    candidates: int = 32  # substitutions evaluated per step
    topk: int = 32  # best tokens per position by gradient
    position: str = "prefix"  # "prefix": string before the prompt; "suffix": right after it
    init: str = " the"  # the start string is this token repeated
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        for name in ("n_tokens", "steps", "candidates", "topk", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class SuffixResult:
    """Start and best loss / probability (token level) and the decoded string's scores."""

    best_text: str
    best_ids: list[int]
    start_prob: float  # mean answer probability on the search probes, start string
    best_prob: float  # same with the best string (token ids as searched)
    text_prob: float  # the best string as text, re-tokenised, through probability_familiarity
    heldout_start_prob: float | None
    heldout_best_prob: float | None
    history: list[float] = field(default_factory=list)  # best mean NLL after each step
    steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _special_head(tokenizer) -> list[int]:
    """Special tokens the tokenizer puts before a prompt (BOS for Llama-style tokenizers)."""
    with_sp = encode_pair(tokenizer, "x", "")[0]
    bare = encode_continuation(tokenizer, "x")
    return with_sp[:len(with_sp) - len(bare)]


class _Layout:
    """Token layout of (head, adversarial string, prompt body, answer) for a set of probes."""

    def __init__(self, tokenizer, probes: Sequence[ProbabilityProbe], position: str):
        self.head = _special_head(tokenizer)
        self.position = position
        self.items = []
        for p in probes:
            pid, cid = encode_pair(tokenizer, p.prompt, p.answer)
            self.items.append((pid[len(self.head):], cid))

    def seq(self, adv: Sequence[int], i: int) -> tuple[list[int], list[int]]:
        body, cid = self.items[i]
        ids = self.head + (list(adv) + body if self.position == "prefix" else body + list(adv))
        return ids + cid[:-1], cid


def _nlls(model, layout: _Layout, advs: Sequence[Sequence[int]], pad: int,
          batch_size: int) -> list[list[float]]:
    """Answer NLL of every probe of the layout, for each adversarial string: [adv][probe]."""
    pairs = [layout.seq(a, i) for a in advs for i in range(len(layout.items))]
    nll = []
    with torch.inference_mode():
        for s in range(0, len(pairs), batch_size):
            chunk = pairs[s:s + batch_size]
            keep = max(len(c) for _, c in chunk)
            logp = forward_logprobs(model, [q for q, _ in chunk], pad, keep)
            for row, (_, c) in enumerate(chunk):
                tgt = torch.tensor(c, device=logp.device)
                nll.append(-float(logp[row, keep - len(c):].gather(-1, tgt[:, None]).sum()))
    n = len(layout.items)
    return [nll[j * n:(j + 1) * n] for j in range(len(advs))]


def _losses(model, layout: _Layout, advs, pad: int, batch_size: int) -> list[float]:
    """Mean answer NLL over the layout's probes for each adversarial string."""
    return [sum(r) / len(r) for r in _nlls(model, layout, advs, pad, batch_size)]


def _mean_prob(model, layout: _Layout, adv, pad: int, batch_size: int) -> float:
    """Mean answer probability over the layout's probes for one string."""
    r = _nlls(model, layout, [adv], pad, batch_size)[0]
    return sum(math.exp(-x) for x in r) / len(r)


def _gradient(model, layout: _Layout, adv: Sequence[int]) -> torch.Tensor:
    """d(mean answer NLL) / d(one-hot adversarial tokens): (n_tokens, V)."""
    emb = model.get_input_embeddings()
    W = emb.weight
    onehot = torch.zeros(len(adv), W.shape[0], device=W.device, dtype=W.dtype)
    onehot[torch.arange(len(adv)), torch.tensor(list(adv), device=W.device)] = 1.0
    onehot.requires_grad_(True)
    total = torch.zeros_like(onehot)
    with torch.enable_grad():
        for i in range(len(layout.items)):
            ids, cid = layout.seq(adv, i)
            x = emb(torch.tensor([ids], device=W.device))
            start = len(layout.head) + (0 if layout.position == "prefix"
                                        else len(layout.items[i][0]))
            x = torch.cat([x[:, :start], (onehot @ W)[None], x[:, start + len(adv):]], dim=1)
            logits = model(inputs_embeds=x, use_cache=False).logits[0, -len(cid):].float()
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(cid, device=W.device),
                                                     reduction="sum") / len(layout.items)
            # grad w.r.t. the one-hot only: the model's parameters get no .grad
            total += torch.autograd.grad(loss, onehot)[0]
    return total


def _forbidden(tokenizer, probes: Sequence[ProbabilityProbe], vocab: int) -> torch.Tensor:
    mask = torch.zeros(vocab, dtype=torch.bool)
    for tid in tokenizer.all_special_ids or []:
        if 0 <= tid < vocab:
            mask[tid] = True
    for p in probes:
        for tid in encode_continuation(tokenizer, p.answer):
            mask[tid] = True
    return mask


def suffix_search(model, tokenizer, probes: Sequence[ProbabilityProbe],
                  heldout: Sequence[ProbabilityProbe] = (), config: SuffixConfig | None = None,
                  on_progress: ProgressFn | None = None) -> SuffixResult:
    """Search an adversarial string that raises the answers' probability on `probes`."""
    config = config or SuffixConfig()
    if not probes:
        raise ValueError("suffix search needs at least one probe")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    pad = pad_id(tokenizer)
    layout = _Layout(tokenizer, probes, config.position)
    vocab = model.get_input_embeddings().weight.shape[0]
    banned = _forbidden(tokenizer, [*probes, *heldout], vocab).to(model_device(model))
    init = encode_continuation(tokenizer, config.init)[:1] or [0]
    adv = init * config.n_tokens
    model.eval()
    best_loss = _losses(model, layout, [adv], pad, config.batch_size)[0]
    history = []
    for step in range(config.steps):
        grad = _gradient(model, layout, adv)
        grad[:, banned] = float("inf")
        top = (-grad).topk(min(config.topk, vocab), dim=1).indices  # most loss-reducing
        cands = []
        for _ in range(config.candidates):
            pos = rng.randrange(len(adv))
            new = list(adv)
            new[pos] = int(top[pos, rng.randrange(top.shape[1])])
            cands.append(new)
        losses = _losses(model, layout, cands, pad, config.batch_size)
        j = min(range(len(cands)), key=lambda k: losses[k])
        if losses[j] < best_loss:
            best_loss, adv = losses[j], cands[j]
        history.append(best_loss)
        if on_progress is not None:
            on_progress(Progress("suffix", step + 1, config.steps, best_loss,
                                 f"suffix step {step + 1}: loss {best_loss:.3f}"))
    start_prob = _mean_prob(model, layout, init * config.n_tokens, pad, config.batch_size)
    best_prob = _mean_prob(model, layout, adv, pad, config.batch_size)
    text = tokenizer.decode(adv, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    text_prob = probability_familiarity(model, tokenizer, _with_text(probes, text, config),
                                        ProbabilityConfig(config.batch_size, 0)).familiarity
    h_start = h_best = None
    if heldout:
        hl = _Layout(tokenizer, heldout, config.position)
        h_start = _mean_prob(model, hl, init * config.n_tokens, pad, config.batch_size)
        h_best = _mean_prob(model, hl, adv, pad, config.batch_size)
    return SuffixResult(text, list(adv), start_prob, best_prob, text_prob, h_start, h_best,
                        history, config.steps)


def _with_text(probes, text: str, config: SuffixConfig) -> list[ProbabilityProbe]:
    if config.position == "prefix":
        return [replace(p, prompt=text + " " + p.prompt) for p in probes]
    return [replace(p, prompt=p.prompt + text) for p in probes]
