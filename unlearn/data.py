"""Text -> fixed-size token blocks, shared by the reinforced model, the finetune and baselines."""

from __future__ import annotations

from pathlib import Path

from unlearn.runtime import IGNORE_INDEX

# How a text file becomes a token stream:
#   "text": one stream, exactly as written (books, articles; a model that saw raw text);
#   "paragraphs": each blank-line-separated paragraph is a document `<s> ... </s>`, the way the
#   demo models were pretrained (they never saw a "\n" token; feeding them "\n\n" teaches the
#   reinforced model a format, not the target, and Eq. 1 then unlearns paragraph breaks).
# "auto" reads `text_format.json` in the model folder (the demo models carry one), else "text".
TEXT_FORMATS = ("text", "paragraphs")
TEXT_FORMAT_FILE = "text_format.json"


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


def check_text_format(text_format: str) -> str:
    """`text_format` if it is one of TEXT_FORMATS, else a ValueError saying which exist."""
    if text_format not in TEXT_FORMATS:
        raise ValueError(f"text_format must be one of {TEXT_FORMATS}, got {text_format!r}")
    return text_format


def resolve_text_format(text_format: str, model: str | Path | None = None) -> str:
    """"text" / "paragraphs" as given; "auto": what `model`'s folder declares, else "text"."""
    import json

    if text_format in TEXT_FORMATS:
        return text_format
    if text_format != "auto":
        raise ValueError(f"text_format must be 'auto' or one of {TEXT_FORMATS}, "
                         f"got {text_format!r}")
    marker = Path(str(model)) / TEXT_FORMAT_FILE if model is not None else None
    if marker is not None and marker.is_file():
        declared = json.loads(marker.read_text(encoding="utf-8")).get("text_format")
        if declared not in TEXT_FORMATS:
            raise ValueError(f"{marker}: text_format must be one of {TEXT_FORMATS}, "
                             f"got {declared!r}")
        return declared
    return "text"


def copy_text_format(src_model: str | Path, dst_dir: str | Path) -> None:
    """Carry the source model's `text_format.json` over to a model derived from it."""
    import shutil

    marker = Path(str(src_model)) / TEXT_FORMAT_FILE
    if marker.is_file() and Path(dst_dir).is_dir():
        shutil.copyfile(marker, Path(dst_dir) / TEXT_FORMAT_FILE)


def encode_text(tokenizer, text: str, text_format: str = "text") -> list[int]:
    """Token ids of `text` without a leading BOS (callers put one at the head of each block).

    "text": the text as one stream. "paragraphs": paragraphs (split at blank lines) joined as
    `p1 </s> <s> p2 </s> <s> ...`, as `unlearn.demo.train.pack_documents` pretrained on them.
    """
    if check_text_format(text_format) == "text":
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    docs = [d.strip() for d in text.split("\n\n") if d.strip()]
    sep = [t for t in (tokenizer.eos_token_id, tokenizer.bos_token_id) if t is not None]
    ids: list[int] = []
    for k, enc in enumerate(tokenizer(docs, add_special_tokens=False)["input_ids"] if docs else []):
        if k:
            ids.extend(sep)
        ids.extend(enc)
    if ids and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


def token_blocks(tokenizer, text: str, block_size: int, min_block: int = 8,
                 text_format: str = "text") -> list[list[int]]:
    """Split `text` into blocks of at most `block_size` token ids, each starting with BOS.

    The whole text is tokenized once (`encode_text`, no leading BOS) and cut every
    `block_size - 1` tokens; the BOS the tokenizer would add to any encoded text is put at the
    head of each block. A final block shorter than `min_block` tokens is dropped.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2, got {block_size}")
    ids = encode_text(tokenizer, text, text_format)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = block_size - len(bos)
    blocks = [(bos if ids[i:i + 1] != bos else []) + ids[i:i + step]  # no double BOS
              for i in range(0, len(ids), step)]
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


def lm_dataset(tokenizer, text: str, block_size: int, text_format: str = "text"):
    """A `datasets.Dataset` of causal-LM blocks (input_ids, attention_mask, labels) for `text`."""
    from datasets import Dataset

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    blocks = token_blocks(tokenizer, text, block_size, text_format=text_format)
    return Dataset.from_dict(pad_blocks(blocks, block_size, pad_id))


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
