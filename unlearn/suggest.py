"""Suggest anchored-term candidates for a person to review (docs/WHP.md section 3).

Two sources: terms far more frequent in the target text than in a general corpus, and words whose
probability the reinforced model raises most over the baseline on the target text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch

__all__ = ["Candidate", "suggest_by_frequency", "suggest_by_reinforcement"]

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")  # letters, inner hyphens; "Harry's" -> "Harry", "s"
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\"\u201c\u201d]|\n)\s*$")


@dataclass(frozen=True)
class Candidate:
    """A suggested anchored term."""

    term: str
    score: float  # higher = more target-specific
    count: int  # occurrences in the target text
    reason: str  # one line a reviewer can read


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def _tokens(text: str) -> list[tuple[str, bool, bool]]:
    """Words as `(word, sentence_initial, joined_to_previous)`; joined = only spaces in between."""
    out, last_end = [], 0
    for m in _WORD.finditer(text):
        gap = text[last_end:m.start()]
        initial = bool(_SENTENCE_END.search(text[max(0, m.start() - 3):m.start()])) or not out
        joined = bool(out) and gap.strip(" ") == "" and "\n" not in gap
        out.append((m.group(0), initial, joined))
        last_end = m.end()
    return out


def _phrases(words: list[tuple[str, bool, bool]], common: set[str]) -> Counter:
    """Runs of 2-3 capitalised words ("Mira Thistlewood"). A sentence-initial first word whose
    lowercase form is in `common` (seen in lowercase, or in the general text) is dropped
    ("Then Mira" -> "Mira")."""
    counts: Counter = Counter()
    run: list[tuple[str, bool]] = []

    def close() -> None:
        items = list(run)
        if items and items[0][1] and items[0][0].lower() in common:
            items = items[1:]
        names = [w for w, _ in items]
        for n in (2, 3):
            for i in range(len(names) - n + 1):
                counts[" ".join(names[i:i + n])] += 1

    for word, initial, joined in words:
        if _capitalised(word) and (joined or not run):
            run.append((word, initial))
        else:
            close()
            run = [(word, initial)] if _capitalised(word) else []
    close()
    return counts


def _log_ratio(c_t: int, n_t: int, c_g: int, n_g: int, smoothing: float = 1.0) -> float:
    """Smoothed log of (rate in target) / (rate in general)."""
    return math.log((c_t + smoothing) / (n_t + smoothing)) - math.log(
        (c_g + smoothing) / (n_g + smoothing))


def suggest_by_frequency(target_text: str, general_text: str, top_k: int = 50,
                         min_count: int = 5, exclude: Iterable[str] = ()) -> list[Candidate]:
    """Words and 2-3 word capitalised phrases far more frequent in the target than in general text.

    Score = smoothed log-ratio of per-word rates (add-one). A word's general count includes its
    other casings ("Wand" vs "wand"), so sentence-initial common words do not look special.
    Keys in `exclude` (e.g. an existing dictionary) are left out.
    """
    excluded = {e.strip() for e in exclude}
    t_words, g_words = _tokens(target_text), _tokens(general_text)
    n_t, n_g = max(len(t_words), 1), max(len(g_words), 1)
    t_count = Counter(w for w, _, _ in t_words)
    g_lower = Counter(w.lower() for w, _, _ in g_words)
    common = {w for w, _, _ in t_words + g_words if w.islower()} | set(g_lower)
    cands: list[Candidate] = []
    for word, c in t_count.items():
        if c < min_count or len(word) < 2 or word in excluded:
            continue
        c_g = g_lower[word.lower()]
        score = _log_ratio(c, n_t, c_g, n_g)
        cands.append(Candidate(word, score, c, f"word: {c}x in target, {c_g}x in general "
                                               f"(log-ratio {score:.2f})"))
    g_text_lower = general_text.lower()
    for phrase, c in _phrases(t_words, common).items():
        if c < min_count or phrase in excluded:
            continue
        c_g = g_text_lower.count(phrase.lower())
        score = _log_ratio(c, n_t, c_g, n_g)
        cands.append(Candidate(phrase, score, c, f"phrase: {c}x in target, {c_g}x in general "
                                                 f"(log-ratio {score:.2f})"))
    cands.sort(key=lambda x: (-x.score, -x.count, x.term))
    return cands[:top_k]


@torch.inference_mode()
def suggest_by_reinforcement(baseline, reinforced, tokenizer, target_text: str, top_k: int = 50,
                             block_size: int = 256, batch_size: int = 4,
                             max_tokens: int | None = 200_000, min_count: int = 2,
                             exclude: Iterable[str] = ()) -> list[Candidate]:
    """Words whose probability the reinforced model raises most over the baseline on the target.

    Both models read the target text in blocks (BOS first). For every word occurrence the gain is
    `log p_reinforced(word | context) - log p_baseline(word | context)` summed over its tokens;
    a word's score is its mean gain over at least `min_count` occurrences (nats).
    """
    excluded = {e.strip() for e in exclude}
    enc = tokenizer(target_text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if max_tokens is not None:
        ids, offsets = ids[:max_tokens], offsets[:max_tokens]
    # token index -> word occurrence: the word containing the token's last character
    char_word = {}
    words = list(_WORD.finditer(target_text))
    for w_index, m in enumerate(words):
        for ch in range(m.start(), m.end()):
            char_word[ch] = w_index
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = block_size - len(bos)
    device = next(reinforced.parameters()).device
    gains = torch.zeros(len(ids), dtype=torch.float64)
    starts = list(range(0, len(ids), step))
    for i in range(0, len(starts), batch_size):
        chunk = [bos + ids[s:s + step] for s in starts[i:i + batch_size]]
        width = max(len(c) for c in chunk)
        x = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros_like(x)
        for b, c in enumerate(chunk):
            x[b, :len(c)] = torch.tensor(c)
            mask[b, :len(c)] = 1
        x, mask = x.to(device), mask.to(device)
        lp_r = torch.log_softmax(reinforced(input_ids=x, attention_mask=mask).logits.float(), -1)
        lp_b = torch.log_softmax(baseline(input_ids=x, attention_mask=mask).logits.float(), -1)
        vocab = min(lp_r.shape[-1], lp_b.shape[-1])
        for b, c in enumerate(chunk):
            # prediction at position p is for token p + 1 of the block
            nxt = x[b, 1:len(c)].clamp(max=vocab - 1).unsqueeze(-1)
            g = (lp_r[b, :len(c) - 1].gather(-1, nxt) - lp_b[b, :len(c) - 1].gather(-1, nxt))
            first = starts[i + b] + (1 - len(bos))  # text index of block position 1
            gains[first:first + len(c) - 1] = g.squeeze(-1).double().cpu()
    occurrence: dict[int, float] = {}
    for t, (s, e) in enumerate(offsets):
        w_index = char_word.get(e - 1) if e > s else None
        if w_index is not None:
            occurrence[w_index] = occurrence.get(w_index, 0.0) + float(gains[t])
    total: dict[str, float] = {}
    count: Counter = Counter()
    for w_index, g in occurrence.items():
        word = words[w_index].group(0)
        total[word] = total.get(word, 0.0) + g
        count[word] += 1
    cands = []
    for word, c in count.items():
        if c < min_count or len(word) < 2 or word in excluded:
            continue
        mean = total[word] / c
        cands.append(Candidate(word, mean, c, f"reinforced model raises its log-probability by "
                                              f"{mean:.2f} nats on average over {c} uses"))
    cands.sort(key=lambda x: (-x.score, -x.count, x.term))
    return cands[:top_k]
