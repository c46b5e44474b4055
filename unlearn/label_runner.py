"""The generic-label runner: a target text -> a resumable `datasets` dataset of WHP labels.

Cuts the text into blocks, translates each block's anchored terms (`unlearn.translate`), runs the
reinforced model on the original and the baseline on the translated block, and applies Eq. 1
(`unlearn.labels`) for every alpha from one forward pass of each model.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from unlearn.anchors import AnchorDictionary, choose_translations
from unlearn.label_store import ShardStore, label_column, labels_complete, read_meta
from unlearn.labels import (
    DEFAULT_SPACE,
    SPACES,
    forbidden_mask_from_lists,
    generic_labels,
    reindex,
)
from unlearn.options import (
    above,
    at_least,
    block_size_field,
    device_field,
    dtype_field,
    each,
    one_of,
    option,
    seed_field,
    text_format_field,
    validate,
)
from unlearn.runtime import (
    Cancelled,
    Progress,
    ProgressFn,
    StopFn,
    package_versions,
    process_group,
)
from unlearn.translate import AnchorMatcher, get_matcher, translate_block

__all__ = ["LabelConfig", "compute_labels", "split_blocks"]


@dataclass
class LabelConfig:
    """How to compute generic labels for a target text."""

    alphas: tuple[float, ...] = option(
        (5.0,), "Eq. 1 strength (repeat for several; the finetune uses the first)",
        check=each(above(0)))
    space: str = option(DEFAULT_SPACE, "Eq. 1 on log-probabilities (default) or on raw logits "
                        "(the paper's literal formula; sensitive to a per-row logit shift)",
                        choices=SPACES)
    text_format: str = text_format_field()
    block_size: int = block_size_field(minimum=4)  # BOS included
    batch_size: int = option(8, "blocks per forward pass", check=at_least(1))
    seed: int = seed_field()  # per-block choice of translations
    rules: tuple[int, ...] = option(
        (1, 2), "consistency rules: 1 and 2 are the paper's (leave one out for ablations only); "
        "add 3 (our extension) to keep the target's own one-word terms out of every generic label",
        check=each(one_of((1, 2, 3))))
    shard_size: int = option(64, "blocks per resumable shard on disk", check=at_least(1))
    max_translated_length: int | None = option(
        None, "crop translated blocks (None: the model's max positions)", check=at_least(2))
    device: str | None = device_field(None)  # None: the reinforced model's device
    dtype: str = dtype_field("float32", "weights dtype of both models while labelling")
    keep_shards: bool = option(False, "keep the `.partial` work directory after success")

    def __post_init__(self) -> None:
        if isinstance(self.alphas, (int, float)):
            self.alphas = (self.alphas,)
        self.alphas = tuple(float(a) for a in self.alphas)
        self.rules = tuple(int(r) for r in self.rules)
        if not self.alphas:
            raise ValueError("alphas must contain at least one value")
        if len(set(label_column(a) for a in self.alphas)) != len(self.alphas):
            raise ValueError(f"alphas contain duplicates: {self.alphas}")
        validate(self)


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
           if k not in ("batch_size", "device", "dtype", "keep_shards", "shard_size")}
    # (the dtype shows in the weights signature below: models are loaded before this runs)
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
        forbidden = torch.zeros(size, vocab, dtype=torch.bool, device=device)  # rule 2
        forbidden[:len(ids)] = forbidden_mask_from_lists(tr.forbidden, vocab, device)
        labels = generic_labels(v_b, v_r[b, :, :vocab].float(), mapping.to(device),
                                config.alphas, forbidden_mask=forbidden, space=config.space)
        row = {"input_ids": orig[b].tolist(), "attention_mask": orig_mask[b].tolist()}
        for alpha, lab in labels.items():
            row[label_column(alpha)] = lab.cpu().tolist()
        rows.append(row)
    return rows


def compute_labels(baseline, reinforced, tokenizer, text: str,
                   anchors: AnchorDictionary | AnchorMatcher, config: LabelConfig | None,
                   out_dir: str | Path, on_progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None):
    """Generic labels for `text`, stored as a `datasets.Dataset` at `out_dir`; returns it.

    The text is tokenized once and cut into blocks of `config.block_size` tokens (BOS first, cuts
    never split an anchored term). Each block gets its own seeded choice of translations
    (`Random(f"{seed}:{block}")`); the reinforced model reads the original block, the baseline the
    translated block (cropped to `max_translated_length`, positions mapped past the crop become
    -1). Columns: see `unlearn.label_store` (`select_alpha` picks the one to train on).

    Resumable: finished shards (`label_store.ShardStore`) are reused by a re-run with the same
    text, dictionary, config and models; the final dataset appears at `out_dir` by a rename.
    `on_progress(Progress("labels", done_blocks, total_blocks))` after each batch;
    `should_stop()` is polled after each batch and raises `runtime.Cancelled` once the finished
    blocks are saved.

    Under `accelerate launch` / `torchrun` (WORLD_SIZE > 1) every process calls this with the
    same arguments and labels its own shards (runs of `shard_size` blocks dealt out in turn); the
    main process merges them into `out_dir`, the same dataset one process writes, and every
    process returns it. Progress is reported by the main process, for its own share.
    """
    import datasets

    config = config or LabelConfig()
    out_dir = Path(out_dir)
    matcher = get_matcher(tokenizer, anchors)
    fingerprint = _fingerprint(text, matcher.anchors, config, tokenizer, (baseline, reinforced))
    if labels_complete(out_dir):
        meta = read_meta(out_dir)
        if meta.get("fingerprint") == fingerprint:
            if on_progress is not None:
                on_progress(Progress("labels", meta["blocks"], meta["blocks"]))
            return datasets.load_from_disk(str(out_dir))
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
    group = process_group(device.type)
    rank, processes = (group.process_index, group.num_processes) if group else (0, 1)
    if rank == 0:  # the main process clears a stale `.partial` before the others look at it
        store = ShardStore(out_dir, fingerprint, total, config.alphas, config.shard_size)
    if group is not None:
        group.wait_for_everyone()
    if rank != 0:
        store = ShardStore(out_dir, fingerprint, total, config.alphas, config.shard_size,
                           clean=False)
    # several processes: process r takes the shard-sized runs of blocks r, r + n, r + 2n, ...
    # Batches never cross a shard boundary, so each block meets the same batch as in one process
    # and the merged labels are identical.
    mine = [k for k in range(total) if (k // config.shard_size) % processes == rank]
    todo = [k for k in mine if k not in store.done]
    terms = 0

    baseline.eval()
    reinforced.eval()
    finished = len(mine) - len(todo)
    report = on_progress if rank == 0 else None  # one bar: the main process's share
    if report is not None:
        report(Progress("labels", finished, len(mine)))
    pos = 0
    while pos < len(todo):
        # a batch never spans a gap in `todo` nor a shard boundary, so shards stay contiguous
        batch = [todo[pos]]
        while (len(batch) < config.batch_size and pos + len(batch) < len(todo)
               and todo[pos + len(batch)] == batch[-1] + 1
               and (not store.pending
                    or batch[-1] + 1 - store.pending[0]["block"] < config.shard_size)):
            batch.append(todo[pos + len(batch)])
        blocks, translations = [], []
        for k in batch:
            a, b = ranges[k]
            block = (bos if ids[a:a + 1] != bos else []) + ids[a:b]  # no double BOS
            choice = choose_translations(matcher.anchors, random.Random(f"{config.seed}:{k}"))
            tr = translate_block(block, tokenizer, matcher, choice, rules=config.rules)
            blocks.append(block)
            translations.append(tr)
            terms += len(tr.spans)
        rows = _label_batch(baseline, reinforced, blocks, translations, config, pad_id, limit,
                            device)
        for k, row in zip(batch, rows, strict=True):
            row["block"] = k
        store.add(rows)
        pos += len(batch)
        finished += len(batch)
        if report is not None:
            report(Progress("labels", finished, len(mine)))
        if should_stop is not None and should_stop() and pos < len(todo):
            store.flush()
            raise Cancelled(f"labels stopped after {finished}/{len(mine)} blocks; re-run to "
                            "resume")
    store.flush()

    meta = {"fingerprint": fingerprint, "blocks": total, "tokens": len(ids),
            "terms_translated_this_run": terms, "config": asdict(config),
            "seconds_this_run": round(time.time() - started, 3), "processes": processes,
            "blocks_per_process": [len(mine)],
            "versions": package_versions(("torch", "datasets"))}
    if group is None:
        return store.publish(out_dir, meta, config.keep_shards)
    from accelerate.utils import gather_object

    per_process = gather_object([(terms, len(mine))])  # every process's share, in rank order
    meta["terms_translated_this_run"] = sum(t for t, _ in per_process)
    meta["blocks_per_process"] = [n for _, n in per_process]
    group.wait_for_everyone()  # all shards are on disk
    if rank == 0:
        store.publish(out_dir, meta, config.keep_shards)
    group.wait_for_everyone()  # the merged dataset is in place
    return datasets.load_from_disk(str(out_dir))
