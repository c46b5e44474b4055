"""Token-level translation of anchored terms with a position mapping (docs/WHP.md sections 3-4).

A key is matched on token ids in every tokenization it can take in running text: at the start of a
block (right after BOS), after a space, after a newline, after an opening quote, plus possessive /
plural forms ("Key's", "Keys") when the tokenizer merges the suffix into the key's tokens. This
works for byte-level BPE ("ĠHarry" after a space, "Harry" after "Ċ") and SentencePiece-style
tokenizers ("▁Harry" after a space or at text start, "Harry" / "H" "arry" after "<0x0A>").

The translated block is built token by token, and `mapping[i]` gives, for original position `i`,
the position in the translated block whose prediction stands in for it:

* tokens outside anchored terms map to their copy;
* the last token of a term maps to the last token of its translation (it predicts the next word);
* the other tokens of a term map to -1 (never trained);
* rule 1: the position just before a term that already appeared in the block maps to -1;
* rule 2: from the position where a translation was used on, the first token of every variant of
  that translation that could begin the next word there is listed in `forbidden[i]` (the label
  runner sets those baseline logits to the row mean before Eq. 1). "Could begin there" follows the
  context the next token is in: the after-a-space form ("ĠJon") everywhere, the no-space forms only
  after a newline, BOS or quote, so a small vocabulary's word pieces ("J" of "J|on") are not
  forbidden in the middle of other words. A possessive / plural variant ("Jon's", "Jons") counts
  only when its first token is a whole word (" Lukes" read as " Lu|k|es" forbids no " Lu").
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from unlearn.anchors import AnchorDictionary, choose_translations

__all__ = ["Translation", "AnchorMatcher", "Match", "translate_block", "get_matcher",
           "render_preview", "CONTEXTS", "SUFFIXES"]

# Running-text contexts a term can follow: name -> text placed before it when tokenizing.
# "start" is the start of a block (right after BOS, no preceding space).
CONTEXTS: dict[str, str] = {"start": "", "space": " ", "newline": "\n", "quote": ' "'}
# Possessive / plural forms matched as a whole when the tokenizer merges them with the key.
SUFFIXES: tuple[str, ...] = ("", "'s", "\u2019s", "s")
# A base match may be followed by these word pieces ("Harry"+"s" -> "Jon"+"s"), see filter_redundant
INFLECTION_CONTINUATIONS = frozenset({"s", "es"})
# Rule 2 forbids the first token of a translation's first *content* word: a translation such as
# "the city school" would otherwise forbid " the" at every later position of the block.
ARTICLES = frozenset({"the", "a", "an"})
_PROBE = "x"  # a plain word put before the context so the context is not at text start


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@dataclass(frozen=True)
class Match:
    """An anchored term found at original token positions `[start, end)`."""

    start: int
    end: int
    key: str
    context: str  # which CONTEXTS entry produced the matched token sequence
    suffix: str  # "" or a SUFFIXES entry merged into the tokens


@dataclass
class Translation:
    """One block translated: ids before/after, the position mapping and rule-2 forbidden tokens."""

    original_ids: list[int]  # (T,)
    translated_ids: list[int]  # (T',) T' may differ from T
    mapping: list[int]  # (T,) original position -> translated position, or -1 (not trained)
    forbidden: list[list[int]]  # (T, *) token ids whose baseline logit is set to the row mean
    spans: list[tuple[int, int, str, str]] = field(default_factory=list)  # (start, end, key, tr.)
    translated_spans: list[tuple[int, int]] = field(default_factory=list)  # same terms in T'


def _common_prefix_len(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class AnchorMatcher:
    """Token-id trie of every running-text tokenization of every key of a dictionary.

    Build once per (tokenizer, dictionary) and reuse for all blocks; `translate_block` accepts it in
    place of the dictionary.
    """

    def __init__(self, tokenizer, anchors: AnchorDictionary,
                 contexts: dict[str, str] | None = None,
                 suffixes: tuple[str, ...] = SUFFIXES) -> None:
        self.tokenizer = tokenizer
        self.anchors = anchors
        self.contexts = dict(CONTEXTS if contexts is None else contexts)
        self.suffixes = suffixes
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._probe_id = self._encode([_PROBE])[0][0]
        self._probe_text = self._decode([self._probe_id])
        self._text_cache: dict[int, str] = {}
        self._variant_cache: dict[tuple[str, str, str], tuple[int, ...]] = {}
        self._first_cache: dict[str, dict[str | None, frozenset[int]]] = {}
        self.trie: dict = {}
        self._related: dict[str, frozenset[str]] | None = None
        self._key_first: list[int] | None = None
        self.variants: dict[tuple[int, ...], tuple[str, str, str]] = {}
        self._build()

    # -- tokenizer helpers ------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def token_text(self, token_id: int) -> str:
        """Surface text of one token as it reads in running text (" Harry", "'s", "\\n")."""
        text = self._text_cache.get(token_id)
        if text is None:
            full = self._decode([self._probe_id, token_id])
            text = full[len(self._probe_text):] if full.startswith(self._probe_text) else full
            self._text_cache[token_id] = text
        return text

    def _in_context(self, forms: list[tuple[str, str]]) -> list[tuple[int, ...]]:
        """Token ids of each `(context_name, text)` as it appears after that context."""
        texts, bases = [], []
        for ctx, text in forms:
            prefix = self.contexts[ctx]
            texts.append((_PROBE + prefix if prefix else "") + text)
            bases.append(_PROBE + prefix if prefix else None)
        full = self._encode(texts)
        unique_bases = sorted({b for b in bases if b is not None})
        base_ids = {}
        if unique_bases:
            base_ids = dict(zip(unique_bases, self._encode(unique_bases), strict=True))
        out = []
        for ids, base in zip(full, bases, strict=True):
            cut = 0 if base is None else _common_prefix_len(ids, base_ids[base])
            out.append(tuple(ids[cut:]))
        return out

    # -- building -------------------------------------------------------------------------
    def _build(self) -> None:
        jobs = [(key, ctx, suf) for key in self.anchors.entries if key.strip()
                for ctx in self.contexts for suf in self.suffixes]
        toks = self._in_context([(ctx, key.strip() + suf) for key, ctx, suf in jobs])
        by_job = dict(zip(jobs, toks, strict=True))
        for (key, ctx, suf), ids in by_job.items():
            if not ids:
                continue
            if suf:
                base = by_job[(key, ctx, "")]
                if tuple(ids[: len(base)]) == base:
                    continue  # suffix is separate tokens: the base match covers it
            if ids in self.variants:
                continue  # same tokens from another context: first wins
            self.variants[ids] = (key, ctx, suf)
            node = self.trie
            for t in ids:
                node = node.setdefault(t, [{}, None])
                payload_node = node
                node = node[0]
            payload_node[1] = (key, ctx, suf)

    def translation_ids(self, translation: str, context: str, suffix: str = "") -> tuple[int, ...]:
        """Tokens of `translation + suffix` as they read after `context`."""
        job = (translation, context, suffix)
        ids = self._variant_cache.get(job)
        if ids is None:
            ids = self._in_context([(context, translation.strip() + suffix)])[0]
            self._variant_cache[job] = ids
        return ids

    def first_tokens(self, translation: str, context: str | None = None) -> frozenset[int]:
        """First token of every running-text variant of `translation`.

        With `context` (a CONTEXTS name, or "lone_space"), only the variants that can begin right
        after a token that puts the text in that context (see `context_after`); without it, all of
        them. Leading articles are skipped ("the city school" -> "city": forbidding " the" would
        forbid the commonest word). A possessive / plural form ("T's", "Ts") adds its first token
        only when that token is a whole word: " Lukes" read as " Lu|k|es" would otherwise forbid
        the piece " Lu" (the base form "T" always counts, it is how the translation begins).
        A whitespace-only first token (a lone "Ġ" / "▁") is skipped in favour of the next token,
        which then belongs to the "lone_space" context: forbidding the lone space would forbid
        every word.
        """
        by_ctx = self._first_cache.get(translation)
        if by_ctx is None:
            by_ctx = {}
            words = translation.split()
            while len(words) > 1 and words[0].casefold() in ARTICLES:
                words = words[1:]
            content = " ".join(words)
            for ctx in self.contexts:
                for suf in self.suffixes:
                    ids = self.translation_ids(content, ctx, suf)
                    for k, t in enumerate(ids):
                        if self.token_text(t).strip():
                            if suf and not self._ends_word(ids, k):
                                break  # "Lukes" -> " Lu|k|es": " Lu" is a piece, not a word
                            where = ctx if k == 0 else "lone_space"
                            by_ctx.setdefault(where, set()).add(t)
                            break
            by_ctx = {c: frozenset(v) for c, v in by_ctx.items()}
            by_ctx[None] = frozenset().union(*by_ctx.values())
            self._first_cache[translation] = by_ctx
        return by_ctx.get(context, frozenset())

    def key_first_tokens(self) -> list[int]:
        """Rule 3 (our extension, not in the paper): the after-a-space first token of every
        one-word key ("Dunmarrow", "Hogwarts" -> " Hog"), sorted. Tokens that also begin a
        translation are left out, so a generic word the dictionary offers is never banned, and
        multi-word keys are skipped ("Order of the Phoenix" would ban " Order")."""
        if self._key_first is None:
            generic: set[int] = set()
            for translations in self.anchors.entries.values():
                for t in translations:
                    generic |= self.first_tokens(t)
            ban: set[int] = set()
            for key in self.anchors.entries:
                words = key.split()
                while len(words) > 1 and words[0].casefold() in ARTICLES:
                    words = words[1:]
                if len(words) == 1:
                    ban |= self.first_tokens(words[0], "space")
            self._key_first = sorted(ban - generic)
        return self._key_first

    def _ends_word(self, ids: tuple[int, ...], k: int) -> bool:
        """True when token `k` of `ids` ends a word: it is the last token, or the next one does
        not continue it (" Luke" before "'s" or " Smith" ends a word, " Lu" before "k" does not)."""
        if k + 1 >= len(ids):
            return True
        nxt = self.token_text(ids[k + 1])
        return not (nxt[:1] and _is_word_char(nxt[0]))

    def context_after(self, token_id: int) -> str:
        """Which running-text context the token after `token_id` starts in: "start" after a
        special token (BOS), "newline" / "quote" after a token ending in one, "lone_space" after a
        whitespace-only token, else "space"."""
        if token_id in self._special:
            return "start"
        text = self.token_text(token_id)
        if text.endswith("\n") and "newline" in self.contexts:
            return "newline"
        if text.endswith('"') and "quote" in self.contexts:
            return "quote"
        if text and not text.strip():
            return "lone_space"
        return "space"

    def related(self, key: str) -> frozenset[str]:
        """Keys that count as the same entity for rule 1: `key` itself and every key whose words
        contain, or are contained in, its words ("Harry" ~ "Harry Potter" ~ "Potter")."""
        if self._related is None:
            by_words: dict[tuple[str, ...], set[str]] = {}
            by_sub: dict[tuple[str, ...], set[str]] = {}
            for k in self.anchors.entries:
                by_words.setdefault(_words(k), set()).add(k)
                for sub in _subsequences(_words(k)):
                    by_sub.setdefault(sub, set()).add(k)
            self._related = {}
            for k in self.anchors.entries:
                words = _words(k)
                rel = set(by_sub.get(words, ())) | {k}
                for sub in _subsequences(words):
                    rel |= by_words.get(sub, set())
                self._related[k] = frozenset(rel)
        return self._related.get(key, frozenset({key}))

    # -- matching -------------------------------------------------------------------------
    def _boundary_ok(self, ids: list[int], start: int, end: int, key: str, suffix: str) -> bool:
        first = self.token_text(ids[start])
        if start > 0 and first[:1] and _is_word_char(first[0]):
            prev = self.token_text(ids[start - 1])
            if prev[-1:] and _is_word_char(prev[-1]) and ids[start - 1] not in self._special:
                return False  # the key would start inside a word ("SirHarry")
        surface = key.strip() + suffix
        if end < len(ids) and surface and _is_word_char(surface[-1]):
            nxt = self.token_text(ids[end])
            if nxt[:1] and _is_word_char(nxt[0]) and ids[end] not in self._special:
                if nxt.lower() not in INFLECTION_CONTINUATIONS:
                    return False  # the key would end inside a word ("Harryish")
                if end + 1 < len(ids):
                    after = self.token_text(ids[end + 1])
                    if after[:1] and _is_word_char(after[0]):
                        return False
        return True

    def match_at(self, ids: list[int], start: int) -> Match | None:
        """Longest key matching at `start` (respecting word boundaries), or None."""
        if ids[start] in self._special:
            return None
        node = self.trie
        candidates = []
        for pos in range(start, len(ids)):
            entry = node.get(ids[pos])
            if entry is None:
                break
            if entry[1] is not None:
                candidates.append((pos + 1, entry[1]))
            node = entry[0]
        for end, (key, ctx, suf) in reversed(candidates):
            if self._boundary_ok(ids, start, end, key, suf):
                return Match(start, end, key, ctx, suf)
        return None

    def matches(self, ids: list[int]) -> list[Match]:
        """Non-overlapping matches, left to right, longest first at each position."""
        out, i = [], 0
        trie = self.trie
        while i < len(ids):
            if ids[i] in trie:
                m = self.match_at(ids, i)
                if m is not None:
                    out.append(m)
                    i = m.end
                    continue
            i += 1
        return out


_CACHE: dict[tuple[int, int, str], AnchorMatcher] = {}


def get_matcher(tokenizer, anchors: AnchorDictionary | AnchorMatcher) -> AnchorMatcher:
    """An `AnchorMatcher` for this tokenizer and dictionary (cached on their identity+content)."""
    if isinstance(anchors, AnchorMatcher):
        return anchors
    sig = (id(tokenizer), id(anchors), json.dumps(anchors.entries, sort_keys=True))
    matcher = _CACHE.get(sig)
    if matcher is None or matcher.tokenizer is not tokenizer:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        matcher = _CACHE[sig] = AnchorMatcher(tokenizer, anchors)
    return matcher


def _words(key: str) -> tuple[str, ...]:
    return tuple(key.casefold().split())


def _subsequences(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {words[i:j] for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def _after_lone_space(matcher: AnchorMatcher, ids: list[int], m: Match, mapping: list[int],
                      translated: list[int]) -> bool:
    """True when the term follows a copied token that is a lone space ("Ġ", "▁")."""
    prev = m.start - 1
    return (prev > 0 and "space" in matcher.contexts and mapping[prev] == len(translated) - 1
            and matcher.token_text(ids[prev]) == " "
            and not matcher.token_text(ids[m.start])[:1].isspace())


def translate_block(ids: list[int], tokenizer, anchors: AnchorDictionary | AnchorMatcher,
                    choice: dict[str, str] | None = None, rng: random.Random | None = None,
                    rules: tuple[int, ...] = (1, 2)) -> Translation:
    """Translate the anchored terms of one block of token ids and build the mapping.

    `ids` is the original block (BOS included if the caller has one; special tokens never match).
    `choice` maps key -> translation for this block; when None it is drawn with `rng`
    (default `random.Random(0)`) via `choose_translations`. `rules` selects the consistency rules
    (1: mask the position predicting a repeated term, 2: forbid used translations' first tokens;
    the paper's two, the default); leaving one out exists for tests and ablations only. Rule 3 is
    our opt-in extension: the target's own one-word terms (`AnchorMatcher.key_first_tokens`) are
    forbidden at every position, so no generic label names the target (without it a baseline
    whose only professors are the target's teaches "Professor Dunmarrow" as the generic answer).
    """
    matcher = get_matcher(tokenizer, anchors)
    if choice is None:
        choice = choose_translations(matcher.anchors, rng or random.Random(0))
    ids = [int(t) for t in ids]
    translated: list[int] = []
    mapping = [-1] * len(ids)
    forbidden: list[list[int]] = [[]] * len(ids)  # shared empty lists: treat as read-only
    spans: list[tuple[int, int, str, str]] = []
    tspans: list[tuple[int, int]] = []
    seen: set[str] = set()
    used: list[tuple[int, str]] = []  # (position, translation) in order of first use
    i = 0
    for m in matcher.matches(ids) + [None]:
        stop = len(ids) if m is None else m.start
        while i < stop:
            translated.append(ids[i])
            mapping[i] = len(translated) - 1
            i += 1
        if m is None:
            break
        trans = choice.get(m.key)
        if trans is None:
            raise KeyError(f"no translation chosen for anchored term {m.key!r}")
        tids = matcher.translation_ids(trans, m.context, m.suffix)
        start = m.start
        if _after_lone_space(matcher, ids, m, mapping, translated):
            # The tokenizer could not merge the space with the key ("Ġ" "Q" "u" ...) but merges
            # it with the translation ("ĠSkyball"): replace the space token too, so the baseline
            # reads the translation tokenized as it would be in running text.
            spaced = matcher.translation_ids(trans, "space", m.suffix)
            if spaced and matcher.token_text(spaced[0])[:1] == " ":
                tids, start = spaced, m.start - 1
                translated.pop()
                mapping[start] = -1
        if 1 in rules and start > 0 and not seen.isdisjoint(matcher.related(m.key)):
            mapping[start - 1] = -1
        tstart = len(translated)
        translated.extend(tids)
        mapping[m.end - 1] = len(translated) - 1 if tids else -1
        spans.append((start, m.end, m.key, trans))
        tspans.append((tstart, len(translated)))
        seen.add(m.key)
        if 2 in rules and all(t != trans for _, t in used):
            used.append((m.end - 1, trans))
        i = m.end
    if used:
        # The position predicting token `pos + 1` forbids the first tokens the used translations
        # take in that token's context ("Ġsleep" after a word; "s" of "s|leep" only after a
        # newline/BOS/quote, so plurals "friend|s" stay untouched), plus their after-a-space
        # forms, which are never word pieces.
        active: dict[str, list[int]] = {}  # context -> sorted ids, shared read-only lists
        k = 0
        for pos in range(len(ids)):
            grew = False
            while k < len(used) and used[k][0] <= pos:
                k, grew = k + 1, True
            if k == 0:
                continue
            if grew:
                active = {}
            ctx = matcher.context_after(ids[pos])
            if ctx not in active:
                ban: set[int] = set()
                for _, t in used[:k]:
                    ban |= matcher.first_tokens(t, ctx) | matcher.first_tokens(t, "space")
                active[ctx] = sorted(ban)
            forbidden[pos] = active[ctx]
    if 3 in rules and (keys := matcher.key_first_tokens()):
        merged: dict[int, list[int]] = {}  # id of a shared rule-2 list -> merged shared list
        for pos, ban in enumerate(list(forbidden)):  # the copy keeps every original list alive
            if id(ban) not in merged:
                merged[id(ban)] = sorted(set(ban) | set(keys))
            forbidden[pos] = merged[id(ban)]
    return Translation(ids, translated, mapping, forbidden, spans, tspans)


def render_preview(tr: Translation, tokenizer) -> str:
    """Original text with each anchored term shown as `[term -> translation]` (for a UI or log)."""
    def upto(k: int) -> str:  # decode prefixes: pieces decoded alone lose their leading space
        return tokenizer.decode(tr.original_ids[:k], skip_special_tokens=True,
                                clean_up_tokenization_spaces=False)

    parts, last = [], ""
    for start, end, _key, trans in tr.spans:
        before, through = upto(start), upto(end)
        parts.append(before[len(last):])
        term = through[len(before):]
        lead = term[: len(term) - len(term.lstrip())]
        parts.append(f"{lead}[{term.strip()} -> {trans}]")
        last = through
    parts.append(upto(len(tr.original_ids))[len(last):])
    return "".join(parts)
