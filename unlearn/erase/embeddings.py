"""Embeddings of training examples for ERASE: an LM's mean-pooled hidden states (default), or a
sentence-transformers model when one is named and installed; optional PCA; a disk cache keyed by
model and data fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from unlearn.erase.evaluate import right_pad


@dataclass
class EmbeddingConfig:
    layer: int = -1  # hidden-state layer to pool (-1 = last)
    pca_dim: int | None = 16  # reduce to this many principal components (None = keep all)
    batch_size: int = 32
    sentence_model: str | None = None  # a sentence-transformers model name/path, if installed

    def __post_init__(self) -> None:
        if self.pca_dim is not None and self.pca_dim < 1:
            raise ValueError(f"pca_dim must be >= 1 or None, got {self.pca_dim}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@torch.inference_mode()
def mean_pooled(model, tokenizer, texts: list[str], layer: int = -1,
                batch_size: int = 32) -> np.ndarray:
    """Mean over non-padding tokens of one layer's hidden states: (len(texts), hidden)."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for start in range(0, len(texts), batch_size):
        encoded = [tokenizer.encode(t) for t in texts[start:start + batch_size]]
        ids, mask, _ = right_pad(encoded, pad)
        hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                       output_hidden_states=True).hidden_states[layer].float()  # (B, T, H)
        m = mask.to(device).unsqueeze(-1).float()
        out.append(((hidden * m).sum(1) / m.sum(1)).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def sentence_embeddings(name: str, texts: list[str], batch_size: int = 32) -> np.ndarray:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise RuntimeError(f"sentence-transformers is not installed; cannot use {name!r} "
                           "(leave sentence_model unset to use the LM's hidden states)") from None
    return np.asarray(SentenceTransformer(name).encode(texts, batch_size=batch_size),
                      dtype=np.float64)


def pca(x: np.ndarray, dim: int | None) -> np.ndarray:
    """Project centred rows on the top `dim` principal directions (sign fixed for determinism)."""
    if dim is None or dim >= x.shape[1]:
        return x
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:dim] * np.sign(vt[:dim, :1] + 1e-300)  # (dim, H), first coordinate positive
    return centred @ vt.T


def model_fingerprint(model) -> str:
    """Name, config and a checksum of the first and last parameter tensors."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    params = list(model.parameters())
    for p in (params[0], params[-1]):
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def embed_texts(texts: list[str], config: EmbeddingConfig, model=None, tokenizer=None,
                cache_dir: str | Path | None = None, data_key: str | None = None) -> np.ndarray:
    """(len(texts), d) embeddings, read from / written to `cache_dir` when given."""
    if config.sentence_model is None and model is None:
        raise ValueError("need a causal LM (model, tokenizer) or config.sentence_model")
    source = (f"st:{config.sentence_model}" if config.sentence_model
              else f"lm:{model_fingerprint(model)}")
    data_key = data_key or hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps([source, data_key, asdict(config)]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"emb-{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        cached = np.load(path)
        if len(cached) == len(texts):
            return cached
    if config.sentence_model:
        x = sentence_embeddings(config.sentence_model, texts, config.batch_size)
    else:
        x = mean_pooled(model, tokenizer, texts, config.layer, config.batch_size)
    x = pca(x, config.pca_dim)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npy")
        np.save(tmp, x)
        os.replace(tmp, path)
    return x
