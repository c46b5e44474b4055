"""Text -> fixed-size token blocks, shared by the reinforced model, the finetune and baselines."""

from __future__ import annotations

from pathlib import Path

IGNORE_INDEX = -100  # HF label convention: positions with this label are not trained


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file; a clear error when it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"text file is empty: {path}")
    return text


def truncate_text(tokenizer, text: str, max_tokens: int | None) -> str:
    """The longest prefix of `text` that tokenizes to at most ~`max_tokens` tokens.

    Cuts at a character offset (fast tokenizers' offset mapping) and then back to the last
    paragraph or line break, so every stage sees the same, cleanly cut text.
    """
    if not max_tokens:
        return text
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow (Python) tokenizers have no offsets: decode instead
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        cut = tokenizer.decode(ids[:max_tokens])
    else:
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        cut = text[:offsets[max_tokens - 1][1]]
    for sep in ("\n\n", "\n", ". ", " "):
        pos = cut.rfind(sep)
        if pos > len(cut) // 2:
            return cut[:pos + len(sep)].rstrip() + "\n"
    return cut


def token_blocks(tokenizer, text: str, block_size: int, min_block: int = 8) -> list[list[int]]:
    """Split `text` into blocks of at most `block_size` token ids, each starting with BOS.

    The whole text is tokenized once (no special tokens) and cut every `block_size - 1`
    tokens; the BOS the tokenizer would add to any encoded text is put at the head of each
    block. A final block shorter than `min_block` tokens is dropped.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2, got {block_size}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = block_size - len(bos)
    blocks = [bos + ids[i:i + step] for i in range(0, len(ids), step)]
    blocks = [b for b in blocks if len(b) >= min(min_block, block_size)]
    if not blocks:
        raise ValueError("text is too short to make a single token block")
    return blocks


def pad_blocks(blocks: list[list[int]], block_size: int, pad_id: int) -> dict[str, list]:
    """Right-pad blocks to `block_size`: input_ids, attention_mask and causal-LM labels."""
    out: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for block in blocks:
        pad = block_size - len(block)
        out["input_ids"].append(block + [pad_id] * pad)
        out["attention_mask"].append([1] * len(block) + [0] * pad)
        out["labels"].append(block + [IGNORE_INDEX] * pad)
    return out


def lm_dataset(tokenizer, text: str, block_size: int):
    """A `datasets.Dataset` of causal-LM blocks (input_ids, attention_mask, labels) for `text`."""
    from datasets import Dataset

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Dataset.from_dict(pad_blocks(token_blocks(tokenizer, text, block_size), block_size,
                                        pad_id))


def pair_with_retain(dataset, retain_dataset):
    """Add `retain_*` columns to `dataset`: block i of the forget set gets retain block i mod R."""
    n_retain = len(retain_dataset)
    if n_retain == 0:
        raise ValueError("retain text gave no blocks")
    idx = [i % n_retain for i in range(len(dataset))]
    picked = retain_dataset.select(idx)
    for col in ("input_ids", "attention_mask", "labels"):
        dataset = dataset.add_column(f"retain_{col}", picked[col])
    return dataset
