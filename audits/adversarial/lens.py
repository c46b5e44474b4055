"""Latent knowledge: the logit lens (each layer's hidden state through the final norm and the
output head) and a linear probe per layer trained on trivia statements.

A drop of the answer probability confined to the last layers, with the middle layers still
carrying it, is the signature of suppression rather than removal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from audits.probes import ProbabilityProbe, TriviaProbe
from audits.scoring import encode_pair, forward_logprobs, max_length, pad_id
from unlearn.runtime import Progress, ProgressFn


def lens_parts(model):
    """(decoder layers, final norm, output head) of a causal LM (Llama-, GPT-2-style)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    decoder = decoder if decoder is not None else getattr(model, "transformer", None)
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    norm = None
    for attr in ("norm", "ln_f", "final_layer_norm"):
        norm = norm or getattr(decoder, attr, None)
    head = model.get_output_embeddings()
    if layers is None or norm is None or head is None:
        raise ValueError(f"logit lens does not know the layout of {type(model).__name__} "
                         "(needs decoder layers, a final norm and an output head)")
    return list(layers), norm, head


@contextmanager
def capture_layers(model):
    """Collect each decoder layer's output hidden state (B, T, H) during a forward."""
    layers, _, _ = lens_parts(model)
    store: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        store.append(output[0] if isinstance(output, tuple) else output)

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@dataclass
class LensResult:
    """Answer probability per layer (layer 1 = after the first decoder layer)."""

    probs: list[list[float]]  # [layer][probe]
    ids: list[str]
    mean: list[float] = field(default_factory=list)  # mean over probes per layer

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ids": self.ids, "probs": self.probs}


def _pairs(tokenizer, prompts, answers, limit):
    seqs, conts = [], []
    for p, a in zip(prompts, answers, strict=True):
        pid, cid = encode_pair(tokenizer, p, a)
        seq = (pid + cid[:-1])[-limit:]
        seqs.append(seq)
        conts.append(cid[-len(seq):])
    return seqs, conts


def logit_lens(model, tokenizer, probes: Sequence[ProbabilityProbe], batch_size: int = 16,
               on_progress: ProgressFn | None = None) -> LensResult:
    """Probability of each probe's answer read through the lens after every layer."""
    _, norm, head = lens_parts(model)
    seqs, conts = _pairs(tokenizer, [p.prompt for p in probes], [p.answer for p in probes],
                         max_length(model))
    n_layers = len(lens_parts(model)[0])
    probs = [[0.0] * len(probes) for _ in range(n_layers)]
    pad = pad_id(tokenizer)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(seqs), batch_size):
            idx = list(range(start, min(start + batch_size, len(seqs))))
            keep = max(len(conts[i]) for i in idx)
            with capture_layers(model) as store:
                forward_logprobs(model, [seqs[i] for i in idx], pad, keep)
            for layer, h in enumerate(store):
                logp = torch.log_softmax(head(norm(h[:, -keep:, :])).float(), dim=-1)
                for row, i in enumerate(idx):
                    L = len(conts[i])
                    tgt = torch.tensor(conts[i], device=logp.device)
                    lp = logp[row, keep - L:].gather(-1, tgt[:, None]).sum()
                    probs[layer][i] = float(lp.exp())
            if on_progress is not None:
                on_progress(Progress("lens", idx[-1] + 1, len(seqs), message="logit lens"))
    mean = [sum(row) / max(len(row), 1) for row in probs]
    return LensResult(probs, [p.id for p in probes], mean)


def layer_features(model, tokenizer, texts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
    """Hidden state of each text's last token after every layer: (layers, N, H) float32."""
    pad = pad_id(tokenizer)
    limit = max_length(model)
    seqs = [encode_pair(tokenizer, t, "")[0][-limit:] for t in texts]
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(seqs), batch_size):
            with capture_layers(model) as store:
                forward_logprobs(model, seqs[start:start + batch_size], pad, 1)
            out.append(torch.stack([h[:, -1, :].float().cpu() for h in store]))
    return torch.cat(out, dim=1)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-2,
                 steps: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularised logistic regression by L-BFGS on standardised features; (w, b)."""
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) \
            + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


@dataclass
class LinearProbeResult:
    """Cross-validated accuracy per layer of a true/false classifier on trivia statements."""

    accuracy: list[float]  # [layer]
    folds: int
    n: int  # statements (two per trivia probe)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "folds": self.folds, "n": self.n}


def linear_probe(model, tokenizer, probes: Sequence[TriviaProbe], folds: int = 5, seed: int = 0,
                 l2: float = 1e-2, batch_size: int = 16) -> LinearProbeResult:
    """Per layer, train a logistic regression on the last-token hidden state of `prompt +
    correct` (true) vs `prompt + distractor` (false) and report k-fold accuracy; both
    statements of a probe fall in the same fold, so the test facts are never seen in training."""
    if len(probes) < folds or folds < 2:
        raise ValueError(f"linear probe needs at least {max(folds, 2)} trivia probes and folds "
                         f">= 2, got {len(probes)} probes, {folds} folds")
    texts = [p.prompt + c for p in probes for c in (p.correct, p.distractor)]
    y = torch.tensor([1.0, 0.0] * len(probes))
    feats = layer_features(model, tokenizer, texts, batch_size)
    order = list(range(len(probes)))
    random.Random(seed).shuffle(order)
    fold_of = {p: i % folds for i, p in enumerate(order)}
    acc = []
    for x in feats:
        right = 0
        for f in range(folds):
            test = [2 * p + j for p in range(len(probes)) if fold_of[p] == f for j in (0, 1)]
            train = [2 * p + j for p in range(len(probes)) if fold_of[p] != f for j in (0, 1)]
            mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
            w, b = fit_logistic((x[train] - mu) / sd, y[train], l2)
            pred = (((x[test] - mu) / sd) @ w + b) > 0
            right += int((pred == (y[test] > 0.5)).sum())
        acc.append(right / len(texts))
    return LinearProbeResult(acc, folds, len(texts))
