"""The generic-label runner: a target text -> a resumable `datasets` dataset of WHP labels.

Cuts the text into blocks, translates each block's anchored terms (`unlearn.translate`), runs the
reinforced model on the original and the baseline on the translated block, and applies Eq. 1
(`unlearn.labels`) for every alpha from one forward pass of each model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from unlearn.anchors import AnchorDictionary, choose_translations
from unlearn.labels import IGNORE_INDEX, SPACES, generic_labels, label_column, reindex
from unlearn.translate import AnchorMatcher, get_matcher, translate_block

__all__ = ["LabelConfig", "LabelsCancelled", "compute_labels", "split_blocks", "load_labels",
           "labels_complete"]


@dataclass
class LabelConfig:
    """How to compute generic labels for a target text."""

    alphas: tuple[float, ...] = (5.0,)  # Eq. 1 strengths; the first one fills the `labels` column
    space: str = "logprob"  # Eq. 1 on log-probabilities, or "logit" for the raw rows (see SPACES)
    text_format: str = "text"  # "text" or "paragraphs" (see unlearn.data.TEXT_FORMATS)
    block_size: int = 512  # tokens per block, BOS included
    batch_size: int = 8  # blocks per forward pass
    seed: int = 0  # per-block choice of translations
    rules: tuple[int, ...] = (1, 2)  # consistency rules to apply (ablations only)
    shard_size: int = 64  # blocks per resumable shard on disk
    max_translated_length: int | None = None  # crop translated blocks (None: model max positions)
    device: str | None = None  # where inputs go (None: the reinforced model's device)
    keep_shards: bool = False  # keep the `.partial` work directory after success

    def __post_init__(self) -> None:
        if isinstance(self.alphas, (int, float)):
            self.alphas = (float(self.alphas),)
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas:
            raise ValueError("alphas must contain at least one value")
        if any(a < 0 for a in self.alphas):
            raise ValueError(f"alphas must be >= 0, got {self.alphas}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        from unlearn.data import check_text_format

        check_text_format(self.text_format)
        if len(set(label_column(a) for a in self.alphas)) != len(self.alphas):
            raise ValueError(f"alphas contain duplicates: {self.alphas}")
        if self.block_size < 4:
            raise ValueError(f"block_size must be >= 4, got {self.block_size}")
        for name in ("batch_size", "shard_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.rules = tuple(int(r) for r in self.rules)
        if not set(self.rules) <= {1, 2}:
            raise ValueError(f"rules must be a subset of (1, 2), got {self.rules}")
        if self.max_translated_length is not None and self.max_translated_length < 2:
            raise ValueError("max_translated_length must be >= 2")


class LabelsCancelled(RuntimeError):
    """`should_stop()` fired; finished blocks are on disk and a re-run resumes from them."""


def _cancelled(message: str) -> Exception:
    # Also an instance of the pipeline's shared `Cancelled` when that module is loaded (importing
    # it here would pull in the Trainer machinery just to raise an exception).
    import sys

    shared = getattr(sys.modules.get("unlearn.reinforce"), "Cancelled", None)
    if isinstance(shared, type) and issubclass(shared, BaseException):
        return type("LabelsCancelled", (LabelsCancelled, shared), {})(message)
    return LabelsCancelled(message)


def split_blocks(ids: Sequence[int], size: int, matcher: AnchorMatcher | None = None,
                 lookback: int = 32) -> list[tuple[int, int]]:
    """Cut a token stream into `[start, end)` ranges of at most `size` tokens.

    Cuts never fall inside an anchored term (when `matcher` is given) and, when possible within
    `lookback` tokens, fall before a token that starts a word, so no block starts or ends inside a
    word and no term is split across blocks.
    """
    n = len(ids)
    inside = bytearray(n + 1)  # inside[b] = 1: cutting before token b splits a term
    if matcher is not None:
        for m in matcher.matches(list(ids)):
            for b in range(m.start + 1, m.end):
                inside[b] = 1

    def word_start(b: int) -> bool:
        if matcher is None:
            return True
        text = matcher.token_text(ids[b])
        prev = matcher.token_text(ids[b - 1])
        return not (text[:1].isalnum() and prev[-1:].isalnum())

    out, a = [], 0
    while a < n:
        b = min(a + size, n)
        if b < n:
            cuts = [c for c in range(b, max(a, b - lookback), -1) if not inside[c]]
            good = [c for c in cuts if word_start(c)]
            b = good[0] if good else (cuts[0] if cuts else b)
        out.append((a, b))
        a = b
    return out


def _fingerprint(text: str, anchors: AnchorDictionary, config: LabelConfig, tokenizer,
                 models: Sequence) -> str:
    h = hashlib.sha256()
    h.update(text.encode("utf-8"))
    h.update(json.dumps(anchors.entries, sort_keys=True).encode())
    cfg = {k: v for k, v in asdict(config).items()
           if k not in ("batch_size", "device", "keep_shards", "shard_size")}
    h.update(json.dumps(cfg, sort_keys=True).encode())
    h.update(f"{type(tokenizer).__name__}:{len(tokenizer)}:{tokenizer.bos_token_id}".encode())
    for m in models:
        h.update(str(getattr(m, "name_or_path", "") or "").encode())
        h.update(str(getattr(getattr(m, "config", None), "vocab_size", "")).encode())
        params = list(m.parameters())  # a cheap weights signature: retrained models differ
        for p in (params[0], params[-1]) if params else ():
            with torch.no_grad():
                head = p.detach().flatten()[:4096].double()
            h.update(f"{float(head.sum()):.6e}:{float(head.abs().sum()):.6e}".encode())
    return h.hexdigest()[:16]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def labels_complete(out_dir: str | Path) -> bool:
    """True when `out_dir` holds a finished label dataset."""
    out_dir = Path(out_dir)
    return (out_dir / "whp_labels.json").is_file() and (out_dir / "state.json").is_file()


def load_labels(out_dir: str | Path):
    """The finished label dataset at `out_dir` (`datasets.load_from_disk`)."""
    import datasets

    if not labels_complete(out_dir):
        raise FileNotFoundError(f"no finished label dataset at {out_dir}")
    return datasets.load_from_disk(str(out_dir))


@contextmanager
def _quiet_datasets():
    """No "Saving the dataset" bar per shard; restores the caller's setting afterwards."""
    from datasets.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _features(alphas: Sequence[float]):
    import datasets

    seq = datasets.Sequence(datasets.Value("int64"))
    cols = {"input_ids": seq, "attention_mask": seq, "labels": seq}
    cols.update({label_column(a): seq for a in alphas})
    cols["block"] = datasets.Value("int64")
    return datasets.Features(cols)


@torch.inference_mode()
def _label_batch(baseline, reinforced, blocks: list[list[int]], translations: list,
                 config: LabelConfig, pad_id: int, limit: int,
                 device: torch.device) -> list[dict]:
    """Labels for one batch of original blocks and their translations (one forward per model)."""
    size = config.block_size
    orig = torch.full((len(blocks), size), pad_id, dtype=torch.long)
    orig_mask = torch.zeros_like(orig)
    for b, ids in enumerate(blocks):
        orig[b, :len(ids)] = torch.tensor(ids)
        orig_mask[b, :len(ids)] = 1
    trans_ids = [tr.translated_ids[:limit] for tr in translations]
    width = max(len(t) for t in trans_ids)
    trans = torch.full((len(blocks), width), pad_id, dtype=torch.long)
    trans_mask = torch.zeros_like(trans)
    for b, ids in enumerate(trans_ids):
        trans[b, :len(ids)] = torch.tensor(ids)
        trans_mask[b, :len(ids)] = 1
    v_r = reinforced(input_ids=orig.to(device), attention_mask=orig_mask.to(device)).logits
    v_t = baseline(input_ids=trans.to(device), attention_mask=trans_mask.to(device)).logits
    vocab = min(v_r.shape[-1], v_t.shape[-1])
    rows = []
    for b, (ids, tr) in enumerate(zip(blocks, translations, strict=True)):
        mapping = torch.full((size,), -1, dtype=torch.long)
        m = torch.tensor(tr.mapping, dtype=torch.long)
        m[m >= limit] = -1  # cropped away: no baseline prediction for these positions
        mapping[:len(ids)] = m
        mapping[len(ids) - 1:] = -1  # the last real token predicts beyond the block
        v_b = reindex(v_t[b, :, :vocab].float(), mapping.to(device))  # (T, V)
        # rule 2 by index (same result as `apply_forbidden` with a (T, V) mask, less memory)
        rows_i = [t for t in range(len(ids)) for v in tr.forbidden[t] if 0 <= v < vocab]
        cols_i = [v for t in range(len(ids)) for v in tr.forbidden[t] if 0 <= v < vocab]
        if rows_i:
            r_idx = torch.tensor(rows_i, device=device)
            v_b[r_idx, torch.tensor(cols_i, device=device)] = v_b.mean(dim=-1)[r_idx]
        labels = generic_labels(v_b, v_r[b, :, :vocab].float(), mapping.to(device),
                                config.alphas, space=config.space)
        row = {"input_ids": orig[b].tolist(), "attention_mask": orig_mask[b].tolist()}
        for alpha, lab in labels.items():
            row[label_column(alpha)] = lab.cpu().tolist()
        row["labels"] = row[label_column(config.alphas[0])]
        rows.append(row)
    return rows


def compute_labels(baseline, reinforced, tokenizer, text: str,
                   anchors: AnchorDictionary | AnchorMatcher, config: LabelConfig | None,
                   out_dir: str | Path,
                   on_progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None):
    """Generic labels for `text`, stored as a `datasets.Dataset` at `out_dir`; returns it.

    The text is tokenized once and cut into blocks of `config.block_size` tokens (BOS first, cuts
    never split an anchored term). Each block gets its own seeded choice of translations
    (`Random(f"{seed}:{block}")`); the reinforced model reads the original block, the baseline the
    translated block (cropped to `max_translated_length`, positions mapped past the crop become
    -1). Columns: `input_ids`, `attention_mask` (blocks right-padded to `block_size`),
    `labels_alpha_{a:g}` per alpha, `labels` (= first alpha), `block` (index).

    Resumable: finished shards live in `<out_dir>.partial/shards/` with `progress.json` and are
    reused by a re-run with the same text, dictionary, config and models; the final dataset is
    saved to a temporary directory and renamed to `out_dir` (`load_labels(out_dir)` or
    `datasets.load_from_disk(out_dir)` read it). `on_progress(done_blocks, total_blocks)` after
    each batch; `should_stop()` is polled after each batch and raises `LabelsCancelled` once the
    finished blocks are saved.
    """
    import datasets

    config = config or LabelConfig()
    out_dir = Path(out_dir)
    matcher = get_matcher(tokenizer, anchors)
    fingerprint = _fingerprint(text, matcher.anchors, config, tokenizer, (baseline, reinforced))
    if labels_complete(out_dir):
        meta = json.loads((out_dir / "whp_labels.json").read_text())
        if meta.get("fingerprint") == fingerprint:
            ds = datasets.load_from_disk(str(out_dir))
            if on_progress is not None:
                on_progress(meta["blocks"], meta["blocks"])
            return ds
    if out_dir.exists() and not labels_complete(out_dir) and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a label dataset; refusing to replace "
                              "it (pass an empty or new directory)")

    started = time.time()
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    pad_id = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0)
                  if t is not None)
    from unlearn.data import encode_text

    ids = encode_text(tokenizer, text, config.text_format)
    ranges = split_blocks(ids, config.block_size - len(bos), matcher)
    if not ranges:
        raise ValueError("the target text has no tokens")
    total = len(ranges)
    model_max = getattr(getattr(baseline, "config", None), "max_position_embeddings", None)
    limit = config.max_translated_length or max(config.block_size, model_max or 0)
    device = torch.device(config.device) if config.device else next(
        reinforced.parameters()).device

    work = out_dir.with_name(out_dir.name + ".partial")
    progress_path = work / "progress.json"
    progress = {"fingerprint": fingerprint, "total": total, "shards": []}
    if progress_path.is_file():
        old = json.loads(progress_path.read_text())
        if old.get("fingerprint") == fingerprint and old.get("total") == total:
            progress = old
    if progress["shards"] == [] and work.exists():
        shutil.rmtree(work)  # stale work from another text/config
    (work / "shards").mkdir(parents=True, exist_ok=True)
    _write_json(progress_path, progress)

    done = set()
    for start, end in progress["shards"]:
        done.update(range(start, end))
    todo = [k for k in range(total) if k not in done]
    features = _features(config.alphas)
    stats = {"terms": 0}

    def flush(rows: list[dict]) -> None:
        if not rows:
            return
        lo, hi = rows[0]["block"], rows[-1]["block"] + 1
        path = work / "shards" / f"{lo:07d}-{hi:07d}"
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with _quiet_datasets():
            datasets.Dataset.from_list(rows, features=features).save_to_disk(str(tmp))
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        progress["shards"].append([lo, hi])
        _write_json(progress_path, progress)

    baseline.eval()
    reinforced.eval()
    pending: list[dict] = []
    finished = total - len(todo)
    if on_progress is not None:
        on_progress(finished, total)
    pos = 0
    while pos < len(todo):
        # a batch never spans a gap in `todo` nor a shard boundary, so shards stay contiguous
        batch = [todo[pos]]
        while (len(batch) < config.batch_size and pos + len(batch) < len(todo)
               and todo[pos + len(batch)] == batch[-1] + 1
               and (not pending or batch[-1] + 1 - pending[0]["block"] < config.shard_size)):
            batch.append(todo[pos + len(batch)])
        if pending and batch[0] != pending[-1]["block"] + 1:
            flush(pending)
            pending = []
        blocks, translations = [], []
        for k in batch:
            a, b = ranges[k]
            block = (bos if ids[a:a + 1] != bos else []) + ids[a:b]  # no double BOS
            choice = choose_translations(matcher.anchors, random.Random(f"{config.seed}:{k}"))
            tr = translate_block(block, tokenizer, matcher, choice, rules=config.rules)
            blocks.append(block)
            translations.append(tr)
            stats["terms"] += len(tr.spans)
        rows = _label_batch(baseline, reinforced, blocks, translations, config, pad_id, limit,
                            device)
        for k, row in zip(batch, rows, strict=True):
            row["block"] = k
        pending.extend(rows)
        pos += len(batch)
        finished += len(batch)
        if len(pending) >= config.shard_size:
            flush(pending)
            pending = []
        if on_progress is not None:
            on_progress(finished, total)
        if should_stop is not None and should_stop() and pos < len(todo):
            flush(pending)
            raise _cancelled(f"labels stopped after {finished}/{total} blocks; re-run to resume")
    flush(pending)

    shards = sorted(progress["shards"])
    parts = [datasets.load_from_disk(str(work / "shards" / f"{lo:07d}-{hi:07d}"))
             for lo, hi in shards]
    ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    n_trained = sum(sum(1 for v in row if v != IGNORE_INDEX) for row in ds["labels"])
    meta = {
        "fingerprint": fingerprint, "blocks": total, "tokens": len(ids),
        "trained_positions": n_trained, "terms_translated_this_run": stats["terms"],
        "columns": list(ds.column_names), "config": asdict(config),
        "seconds_this_run": round(time.time() - started, 3),
        "versions": {"torch": torch.__version__, "datasets": datasets.__version__},
    }
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with _quiet_datasets():
        ds.save_to_disk(str(tmp))
    _write_json(tmp / "whp_labels.json", meta)
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + f".old-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_dir)
    if not config.keep_shards:
        shutil.rmtree(work, ignore_errors=True)
    return datasets.load_from_disk(str(out_dir))
