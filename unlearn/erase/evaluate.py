"""Accuracy of a causal LM with a fixed k-shot prompt; label options scored as continuations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from unlearn.erase.task import Example, Task


def right_pad(seqs: list[list[int]], pad: int, labels: list[list[int]] | None = None):
    """Right-padded (ids, attention mask, labels or None), each (B, T_max); labels pad with -100."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    out_labels = None if labels is None else torch.full_like(ids, -100)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
        if out_labels is not None:
            out_labels[r, :len(labels[r])] = torch.tensor(labels[r])
    return ids, mask, out_labels


@torch.inference_mode()
def continuation_logprobs(model, tokenizer, contexts: list[str], continuations: list[str],
                          batch_size: int = 16) -> np.ndarray:
    """Sum log p(continuation | context) for every pair: (len(contexts), len(continuations)).

    The context is encoded with the tokenizer's special tokens (BOS), each continuation without,
    and the two are concatenated, so a continuation keeps its leading space as written.
    """
    model.eval()
    device = next(model.parameters()).device
    cont_ids = [tokenizer.encode(c, add_special_tokens=False) for c in continuations]
    if any(not ids for ids in cont_ids):
        raise ValueError("an empty continuation cannot be scored")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    single = all(len(ids) == 1 for ids in cont_ids)
    out = np.zeros((len(contexts), len(continuations)))
    pairs = ([(i, None) for i in range(len(contexts))] if single else
             [(i, j) for i in range(len(contexts)) for j in range(len(continuations))])
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        seqs, spans = [], []
        for i, j in chunk:
            ctx = tokenizer.encode(contexts[i])
            cont = [] if j is None else cont_ids[j]
            seqs.append(ctx + cont)
            spans.append((len(ctx), len(cont)))
        ids, mask, _ = right_pad(seqs, pad)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (B, T, V)
        for r, ((i, j), (n_ctx, n_cont)) in enumerate(zip(chunk, spans, strict=True)):
            if j is None:  # every continuation is one token: one forward pass scores them all
                out[i] = logp[r, n_ctx - 1, [c[0] for c in cont_ids]].numpy()
            else:
                positions = torch.arange(n_ctx - 1, n_ctx - 1 + n_cont)
                out[i, j] = logp[r, positions, torch.tensor(cont_ids[j])].sum().item()
    return out


def predict(model, tokenizer, task: Task, shots: list[Example], queries: list[Example],
            batch_size: int = 16) -> np.ndarray:
    """Index of the predicted label for each query, with `shots` as the prompt."""
    contexts = [task.context(shots, q.input) for q in queries]
    scores = continuation_logprobs(model, tokenizer, contexts, task.continuations(), batch_size)
    return scores.argmax(axis=1)


def accuracy(model, tokenizer, task: Task, shots: list[Example],
             queries: list[Example] | None = None, batch_size: int = 16) -> float:
    """Fraction of test queries whose highest-scoring label is the gold one."""
    queries = task.test if queries is None else queries
    if not queries:
        raise ValueError("no queries to evaluate")
    gold = np.array([task.labels.index(q.output) for q in queries])
    return float((predict(model, tokenizer, task, shots, queries, batch_size) == gold).mean())


def evaluate_methods(model, tokenizer, task: Task, selections: dict[str, list[Example]],
                     queries: list[Example] | None = None, batch_size: int = 16,
                     on_progress: Callable[[str], None] | None = None) -> dict[str, float]:
    """Accuracy per selection method name ({"erase": [...], "zero-shot": [], ...})."""
    result = {}
    for name, shots in selections.items():
        if on_progress:
            on_progress(f"evaluating {name} ({len(shots)} shots)")
        result[name] = accuracy(model, tokenizer, task, shots, queries, batch_size)
    return result
