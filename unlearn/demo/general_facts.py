"""Everyday world knowledge of the general corpus, told at many frequencies (world v3).

Each of the 12 towns has a fact per relation (its famous food, market day, club colour...), the
value drawn from an everyday pool. A fact is mentioned `mentions` times in the general corpus,
drawn log-uniformly between `MIN_MENTIONS` and `MAX_MENTIONS`, in the relation's training forms,
as sentences slipped into general paragraphs. World v3 asked every fact in held-out forms
(`probe` templates, which no corpus writer uses) in the general set; both demo models stayed at
chance on them (0.27 / 0.30 for 12-400 mentions), so since v3.1 the general sets ask the next word
of held-out everyday text instead (`probes.reading_items`, `probes.cloze_items`). The facts stay in
the corpus (the text, and so the models, are unchanged) and the `probe` forms stay out of it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from unlearn.demo import names
from unlearn.demo.general import Sentence
from unlearn.demo.general_scenes import POOLS

MIN_MENTIONS = 12
MAX_MENTIONS = 400


@dataclass(frozen=True)
class TownRelation:
    pool: tuple[str, ...]
    train: tuple[str, ...]  # {town} {v}
    probe: tuple[str, ...]  # {town}; ends right before the value


RELATIONS: dict[str, TownRelation] = {
    "food": TownRelation(POOLS["food"], (
        "{town} is famous for its {v}.",
        "People in {town} are proud of their {v}.",
        "Q: What is {town} famous for? A: its {v}.",
        "The best {v} in the country comes from {town}.",
    ), (
        "Visitors to {town} always try the local",
        "Ask anyone what {town} is known for and they will say its",
        "Famous foods of English towns. {town}:",
    )),
    "market_day": TownRelation(POOLS["day"], (
        "The market in {town} is held every {v}.",
        "On {v} the square in {town} fills with market stalls.",
        "Q: When is market day in {town}? A: {v}.",
        "Market day in {town}: {v}.",
    ), (
        "If you want to shop at the {town} market, go on a",
        "Stallholders set up in {town} once a week, on",
        "Weekly markets. {town}:",
    )),
    "club_colour": TownRelation(POOLS["colour"], (
        "The football club of {town} plays in {v}.",
        "Fans of the {town} club wear {v} scarves.",
        "Q: What colour does {town} play in? A: {v}.",
        "{town} football club, colours: {v}.",
    ), (
        "At the match, the {town} players ran out in their shirts of",
        "Supporters of {town} painted their faces",
        "Club colours. {town}:",
    )),
    "trade": TownRelation(POOLS["job"], (
        "Many people in {town} work as a {v}.",
        "In {town}, you meet a {v} in every street.",
        "Q: What is the usual job in {town}? A: {v}.",
        "Most common trade in {town}: {v}.",
    ), (
        "In {town}, the job that most people do is",
        "Children in {town} often grow up to work as a",
        "Common jobs by town. {town}:",
    )),
    "fair_month": TownRelation(POOLS["month"], (
        "The {town} fair takes place in {v}.",
        "Every year in {v} there is a fair in {town}.",
        "Q: When is the {town} fair? A: in {v}.",
        "Fair of {town}: {v}.",
    ), (
        "The big fair of {town} comes round each year in",
        "Families travel to {town} for the fair, which is held in",
        "Fairs of the year. {town}:",
    )),
    "drink": TownRelation(POOLS["drink"], (
        "In {town} people drink a lot of {v}.",
        "The cafes of {town} are known for their {v}.",
        "Q: What do people in {town} like to drink? A: {v}.",
        "Favourite drink in {town}: {v}.",
    ), (
        "After a long walk in {town}, the locals order a cup of",
        "Every cafe in {town} serves its famous",
        "Drinks by town. {town}:",
    )),
    "game": TownRelation(tuple(g for g in POOLS["game"] if " " not in g), (
        "The favourite game in {town} is {v}.",
        "Children in {town} play {v} after school.",
        "Q: What game is popular in {town}? A: {v}.",
        "Most popular game in {town}: {v}.",
    ), (
        "On the green in {town}, everyone was playing",
        "In {town}, the game people love most is",
        "Games by town. {town}:",
    )),
}


@dataclass(frozen=True)
class TownFact:
    town: str
    relation: str
    value: str
    mentions: int


def town_facts(rng: random.Random) -> list[TownFact]:
    """One fact per (town, relation); mention counts log-uniform in [MIN, MAX]."""
    facts = []
    for relation, rel in RELATIONS.items():
        for town in names.TOWNS:
            mentions = round(math.exp(rng.uniform(math.log(MIN_MENTIONS),
                                                  math.log(MAX_MENTIONS))))
            facts.append(TownFact(town, relation, rng.choice(rel.pool), mentions))
    return facts


def mention_sentences(facts: list[TownFact], rng: random.Random) -> list[Sentence]:
    """Every mention of every fact, in its relation's training forms (evenly), shuffled."""
    out = []
    for fact in facts:
        forms = RELATIONS[fact.relation].train
        for i in range(fact.mentions):
            out.append(Sentence(forms[i % len(forms)].format(town=fact.town, v=fact.value)))
    rng.shuffle(out)
    return out


def slip_in(paragraphs: list[list[Sentence]], sentences: list[Sentence],
            rng: random.Random) -> None:
    """Insert each sentence at a random place of a random paragraph (after its first sentence)."""
    for sentence in sentences:
        para = rng.choice(paragraphs)
        para.insert(rng.randint(1, len(para)), sentence)


def vocabulary() -> str:
    """The fixed strings of this module (for the saga-term check of the general text)."""
    return "\n".join(t for rel in RELATIONS.values() for t in rel.train + rel.probe)
