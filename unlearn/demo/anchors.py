"""The anchored-term dictionary of the target saga: unique term -> generic counterparts.

Every translation is a plain expression that occurs (many times) in the general corpus, so a
baseline model knows it well: characters -> common first names / surnames, the school ->
"the city school", the sport -> "football", creatures -> plain animals, spells -> the plain word
of their effect, places -> towns, and so on.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from unlearn.demo import names
from unlearn.demo.canon import Saga

MIN_COUNT = 5  # a translation must occur at least this often in the general corpus


class PhraseCounter:
    """Whole-word counts of words and phrases in a text."""

    def __init__(self, text: str) -> None:
        self.text = text
        tokens = re.findall(r"\w+", text)
        self.words = Counter(tokens)
        self.pairs = Counter(zip(tokens, tokens[1:], strict=False))
        self.cache: dict[str, int] = {}

    def __call__(self, phrase: str) -> int:
        parts = phrase.split()
        if len(parts) == 1:
            return self.words[phrase]
        if len(parts) == 2:
            return self.pairs[(parts[0], parts[1])]
        if phrase not in self.cache:
            self.cache[phrase] = count_phrase(self.text, phrase)
        return self.cache[phrase]


def count_phrase(text: str, phrase: str) -> int:
    """Occurrences of `phrase` in `text` that start and end at word boundaries."""
    n = 0
    for m in re.finditer(re.escape(phrase), text):
        before = text[m.start() - 1] if m.start() else " "
        after = text[m.end()] if m.end() < len(text) else " "
        n += not (before.isalnum() or after.isalnum())
    return n


def build_anchors(saga: Saga, general_text: str, rng: random.Random) -> dict[str, list[str]]:
    """Map every unique term of `saga` to 1-2 generic counterparts found in `general_text`."""
    counts = PhraseCounter(general_text)

    def common(phrase: str) -> bool:
        return counts(phrase) >= MIN_COUNT

    def pick(pool: list[str] | tuple[str, ...], k: int = 2) -> list[str]:
        options = [p for p in pool if common(p)]
        if not options:
            raise ValueError(f"no generic counterpart occurs in the general corpus: {pool}")
        return sorted(rng.sample(options, min(k, len(options))))

    anchors: dict[str, list[str]] = {}
    surnames: dict[str, list[str]] = {}
    effects = {f.subject: f.object for f in saga.facts if f.relation == "effect"}
    houses = dict(zip(saga.pools.houses, names.SCHOOL_HOUSES, strict=False))
    for e in sorted(saga.entities, key=lambda e: e.name):
        if e.kind == "character":
            if e.surname not in surnames:
                surnames[e.surname] = pick(names.SURNAMES, 1 + rng.randrange(2))
            last = surnames[e.surname]
            pool = names.FEMALE if e.gender == "f" else names.MALE
            combos = [(a, b) for a in pool for b in last if common(f"{a} {b}")]
            firsts = sorted({a for a, _ in combos})
            first = sorted(rng.sample(firsts, min(2, len(firsts)))) if firsts else pick(pool)
            full = [f"{a} {b}" for a, b in combos if a in first]
            anchors[e.first] = first
            anchors[e.surname] = last
            anchors[e.name] = sorted(rng.sample(full, min(2, len(full)))) if full else first
        elif e.kind in ("school", "order"):
            generic = names.CITY_SCHOOL if e.kind == "school" else names.CLUB
            for term in (e.name, *e.aliases):
                anchors[term] = [generic]
        elif e.kind == "house":
            anchors[e.name] = [houses[e.name]]
        elif e.kind == "place":
            anchors[e.name] = pick(names.TOWNS)
        elif e.role == "species":
            anchors[e.name] = pick([e.generic])
        elif e.role == "pet":
            anchors[e.name] = pick(names.PET_NAMES)
        elif e.kind == "object":
            anchors[e.name] = pick([e.generic])
        elif e.kind == "sport":
            anchors[e.name] = [names.SPORT]
        elif e.kind == "spell":
            anchors[e.name] = pick([effects[e.name]])
        else:
            raise ValueError(f"no anchor rule for {e}")
    for key, values in anchors.items():
        if not all(common(v) for v in values):
            raise ValueError(f"translation of {key!r} is not common in the general corpus")
        for value in values:
            if value == key or any(k in value for k in anchors):
                raise ValueError(f"translation {value!r} of {key!r} contains a key")
    missing = set(saga.unique_terms()) - set(anchors)
    if missing:
        raise ValueError(f"unique terms without anchors: {sorted(missing)}")
    return dict(sorted(anchors.items()))
