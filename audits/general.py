"""General ability: the suite's cloze multiple-choice set and held-out perplexity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from audits.probes import MCItem
from audits.scoring import (
    encode_continuation,
    forward_logprobs,
    max_length,
    pad_id,
    score_continuations,
)
from unlearn.runtime import Progress, ProgressFn


@dataclass
class GeneralConfig:
    """Settings of the general-ability measures."""

    batch_size: int = 32  # sequences per forward pass for multiple choice
    block_size: int | None = None  # perplexity window in tokens (None: the model's max length)
    ppl_batch_size: int = 8  # windows per forward pass
    max_windows: int | None = None  # cap on perplexity windows (None: the whole text)
    # how the text becomes tokens (unlearn.data.TEXT_FORMATS): "auto" = what the model's folder
    # declares (the demo models: paragraphs as <s> ... </s> documents), else one stream
    text_format: str = "auto"

    def __post_init__(self) -> None:
        if self.text_format not in ("auto", "text", "paragraphs"):
            raise ValueError(f"text_format must be auto, text or paragraphs, "
                             f"got {self.text_format!r}")
        if self.batch_size <= 0 or self.ppl_batch_size <= 0:
            raise ValueError("batch_size and ppl_batch_size must be positive")
        if self.block_size is not None and self.block_size < 2:
            raise ValueError(f"block_size must be >= 2, got {self.block_size}")
        if self.max_windows is not None and self.max_windows <= 0:
            raise ValueError(f"max_windows must be positive, got {self.max_windows}")


@dataclass
class MCResultItem:
    """One multiple-choice item."""

    id: str
    answer: int
    predicted: int  # argmax of summed log-likelihood
    predicted_norm: int  # argmax of per-token mean log-likelihood
    logprobs: list[float]  # summed log-likelihood per option
    is_correct: bool


@dataclass
class MCResult:
    """Accuracy and per-item records."""

    accuracy: float
    accuracy_norm: float
    items: list[MCResultItem]

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "accuracy_norm": self.accuracy_norm,
                "items": [asdict(it) for it in self.items]}


@dataclass
class PerplexityResult:
    """Token-weighted perplexity over non-overlapping windows."""

    perplexity: float  # exp(total NLL / n_tokens)
    nll: float  # total negative log-likelihood (nats)
    n_tokens: int  # tokens predicted
    n_windows: int
    block_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def general_mc(model, tokenizer, items: Sequence[MCItem], config: GeneralConfig | None = None,
               on_progress: ProgressFn | None = None) -> MCResult:
    """Pick the option with the highest summed log-likelihood after the context."""
    config = config or GeneralConfig()
    prompts = [it.context for it in items for _ in it.options]
    conts = [o for it in items for o in it.options]
    scores = iter(score_continuations(model, tokenizer, prompts, conts,
                                      batch_size=config.batch_size, on_progress=on_progress))
    out = []
    for it in items:
        s = [next(scores) for _ in it.options]
        lp = [x.logprob for x in s]
        norm = [x.logprob / max(len(x.token_ids), 1) for x in s]
        pred = max(range(len(lp)), key=lp.__getitem__)
        pred_n = max(range(len(norm)), key=norm.__getitem__)
        out.append(MCResultItem(it.id, it.answer, pred, pred_n, lp, pred == it.answer))
    n = max(len(out), 1)
    return MCResult(sum(o.is_correct for o in out) / n,
                    sum(o.predicted_norm == o.answer for o in out) / n, out)


def _encode(model, tokenizer, text: str, text_format: str) -> list[int]:
    """The text's ids (no leading BOS) in the format the model was trained on."""
    if text_format == "text":
        return encode_continuation(tokenizer, text)
    try:
        from unlearn.data import encode_text, resolve_text_format
    except ImportError:  # audits used without the unlearn package: one stream
        return encode_continuation(tokenizer, text)
    folder = getattr(getattr(model, "config", None), "_name_or_path", None) or None
    return encode_text(tokenizer, text, resolve_text_format(text_format, folder))


def perplexity(model, tokenizer, text: str, config: GeneralConfig | None = None,
               on_progress: ProgressFn | None = None) -> PerplexityResult:
    """Perplexity of `text`, token-weighted over non-overlapping windows.

    The text is encoded without a leading BOS (`config.text_format`: one stream, or paragraphs
    joined as `</s> <s>` documents when the model was pretrained that way) and cut into windows
    of `block_size - 1` tokens (`block_size` when the tokenizer has no BOS); each window is
    prefixed with BOS (unless it starts with one) so that every text token is predicted exactly
    once; a document's own `<s>` is not counted as text.
    """
    config = config or GeneralConfig()
    if not text or not text.strip():
        raise ValueError("perplexity needs non-empty text")
    block = config.block_size or min(max_length(model), 4096)
    block = min(block, max_length(model))
    bos = tokenizer.bos_token_id
    ids = _encode(model, tokenizer, text, config.text_format)
    step = block - 1 if bos is not None else block
    windows = [ids[i:i + step] for i in range(0, len(ids), step)]
    if bos is None:
        windows = [w for w in windows if len(w) >= 2]  # the first token has no context
    if config.max_windows is not None:
        windows = windows[:config.max_windows]
    if not windows:
        raise ValueError("text too short for perplexity")
    seqs = [([bos] if bos is not None and w[:1] != [bos] else []) + w for w in windows]
    pad = pad_id(tokenizer)
    nll, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(seqs), config.ppl_batch_size):
            batch = seqs[start:start + config.ppl_batch_size]
            logp = forward_logprobs(model, batch, pad)  # (B, T, V)
            T = logp.shape[1]
            for row, s in enumerate(batch):
                tgt = torch.tensor(s[1:], dtype=torch.long, device=logp.device)
                lp = logp[row, T - len(s): T - 1].gather(-1, tgt[:, None])[:, 0]
                if bos is not None:  # a document's own <s> after </s> is not text to predict
                    lp = lp[tgt != bos]
                nll -= float(lp.double().sum())
                count += int(lp.numel())
            if on_progress is not None:
                on_progress(Progress("perplexity", min(start + config.ppl_batch_size, len(seqs)),
                                     len(seqs), message="perplexity"))
    ppl = math.exp(nll / count) if nll / count < 700 else math.inf  # a broken model overflows
    return PerplexityResult(ppl, nll, count, len(seqs), block)
