"""Pure helpers of the Anchored terms tab: table rows <-> dictionary, issues per row, preview spans.

No gradio here; the tab module wires these to components.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from unlearn.anchors import AnchorDictionary, AnchorError, validate_anchors
from unlearn.translate import Translation, get_matcher, translate_block

HEADERS = ["key", "translations (separated by |)", "issues"]
SEP = "|"
LABEL_TERM = "anchored term"
LABEL_MASKED = "masked (not trained)"
LABEL_FORBIDS = "forbids from here"
LABEL_TRANSLATION = "translation"
LABEL_FORBIDDEN = "forbidden token"
COLORS = {LABEL_TERM: "#f59e0b", LABEL_MASKED: "#9ca3af", LABEL_FORBIDS: "#ef4444",
          LABEL_TRANSLATION: "#22c55e", LABEL_FORBIDDEN: "#ef4444"}


def clean_rows(rows) -> list[list[str]]:
    """Table value (list of lists or DataFrame) -> `[[key, translations], ...]`, no blanks."""
    if rows is None:
        return []
    if hasattr(rows, "values") and hasattr(rows, "columns"):  # pandas DataFrame
        rows = rows.values.tolist()
    out = []
    for row in rows:
        cells = ["" if c is None or (isinstance(c, float) and c != c) else str(c)
                 for c in list(row)[:2]]
        cells += [""] * (2 - len(cells))
        if cells[0].strip() or cells[1].strip():
            out.append(cells)
    return out


def split_translations(cell: str) -> list[str]:
    return [t.strip() for t in cell.split(SEP) if t.strip()]


def rows_to_dictionary(rows) -> tuple[AnchorDictionary, dict[int, list[str]]]:
    """The dictionary the table describes, and row-level problems found while reading it.

    A key repeated exactly on several rows is merged (the later row gets a warning).
    """
    entries: dict[str, list[str]] = {}
    first_row: dict[str, int] = {}
    notes: dict[int, list[str]] = {}
    for i, (key, cell) in enumerate(clean_rows(rows)):
        key = key.strip()
        values = split_translations(cell)
        if key in first_row:
            notes.setdefault(i, []).append(f"warning: same key as row {first_row[key] + 1}; "
                                           "translations merged")
        first_row.setdefault(key, i)
        entries.setdefault(key, []).extend(values)
    return AnchorDictionary(entries), notes


def dictionary_to_rows(anchors: AnchorDictionary) -> list[list[str]]:
    return [[k, f" {SEP} ".join(v), ""] for k, v in anchors.entries.items()]


def validated_rows(rows) -> tuple[list[list[str]], int, int]:
    """Rows with their `issues` column filled by `unlearn.anchors.validate_anchors`.

    Returns `(rows, n_errors, n_warnings)`.
    """
    rows = clean_rows(rows)
    anchors, notes = rows_to_dictionary(rows)
    by_key: dict[str, list[str]] = {}
    n_err = n_warn = 0
    for issue in validate_anchors(anchors):
        by_key.setdefault(issue.key, []).append(f"{issue.severity}: {issue.message}")
        if issue.severity == "error":
            n_err += 1
        else:
            n_warn += 1
    out, reported = [], set()
    for i, (key, cell) in enumerate(rows):
        msgs = list(notes.get(i, []))
        if key.strip() not in reported:  # issues of a merged key go on its first row
            msgs += by_key.get(key.strip(), [])
            reported.add(key.strip())
        n_warn += len(notes.get(i, []))
        out.append([key, cell, "; ".join(msgs) if msgs else "ok"])
    return out, n_err, n_warn


def token_texts(tokenizer, ids: list[int]) -> list[str]:
    """Surface text of each token (so that joining them gives back the text, roughly)."""
    out, prev = [], ""
    for i in range(len(ids)):
        text = tokenizer.decode(ids[: i + 1], skip_special_tokens=False,
                                clean_up_tokenization_spaces=False)
        out.append(text[len(prev):] if text.startswith(prev) else
                   tokenizer.decode([ids[i]], clean_up_tokenization_spaces=False))
        prev = text
    return out


@dataclass
class Preview:
    """Highlighted original and translated blocks, and a per-position mapping table."""

    original: list[tuple[str, str | None]]
    translated: list[tuple[str, str | None]]
    table: list[list]
    translation: Translation


def preview(tokenizer, anchors: AnchorDictionary, text: str, seed: int = 0,
            max_tokens: int = 512) -> Preview:
    """Translate `text` as the label runner would and label every token for display."""
    if not anchors.entries:
        raise AnchorError("the dictionary is empty: add at least one term")
    ids = tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
    tr = translate_block(ids, tokenizer, anchors, rng=random.Random(seed))
    o_text = token_texts(tokenizer, tr.original_ids)
    t_text = token_texts(tokenizer, tr.translated_ids)
    in_term = {p for s, e, _k, _t in tr.spans for p in range(s, e)}
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    original: list[tuple[str, str | None]] = []
    matcher = get_matcher(tokenizer, anchors)
    prev_forbidden: set[int] = set()
    for i, tid in enumerate(tr.original_ids):
        label = None
        # growth of the after-a-word list marks where forbidding starts; a newline adds the
        # no-space forms for one position only (see translate_block, rule 2)
        now = set(tr.forbidden[i]) if matcher.context_after(tid) == "space" else prev_forbidden
        new_forbidden = now - prev_forbidden
        if i in in_term:
            label = LABEL_TERM if tr.mapping[i] >= 0 else LABEL_MASKED
        elif tr.mapping[i] < 0:
            label = LABEL_MASKED
        elif new_forbidden:
            label = LABEL_FORBIDS
        prev_forbidden |= now
        if tid in special:
            continue
        original.append((o_text[i], label))
    t_span = {p for s, e in tr.translated_spans for p in range(s, e)}
    inverse = {t: i for i, t in enumerate(tr.mapping) if t >= 0}
    translated: list[tuple[str, str | None]] = []
    for j, tid in enumerate(tr.translated_ids):
        if tid in special:
            continue
        label = LABEL_TRANSLATION if j in t_span else None
        i = inverse.get(j - 1)  # the original position predicting token j
        if label is None and i is not None and tid in tr.forbidden[i]:
            label = LABEL_FORBIDDEN
        translated.append((t_text[j], label))
    table = []
    for i in range(len(tr.original_ids)):
        j = tr.mapping[i]
        forb = [tokenizer.decode([t]) for t in tr.forbidden[i]]
        table.append([i, repr(o_text[i]), j, repr(t_text[j]) if j >= 0 else "",
                      ", ".join(repr(f) for f in forb)])
    return Preview(original, translated, table, tr)


def merge_candidates(rows, candidates: list[tuple[str, str]]) -> tuple[list[list[str]], int]:
    """Add `(key, translations)` candidates whose key is not in the table yet."""
    rows = clean_rows(rows)
    have = {r[0].strip().casefold() for r in rows}
    added = 0
    for key, trans in candidates:
        if key.strip() and key.strip().casefold() not in have:
            rows.append([key.strip(), trans])
            have.add(key.strip().casefold())
            added += 1
    return rows, added
