"""The general corpus: everyday narrative and simple facts with common names.

Paragraphs are built from the slot-filled scenes of `general_scenes.py` plus "people" paragraphs
that state everyday versions of the saga relations with the saga's own training templates
("Anna's best friend was Ben", "Tom's dog was called Max"). The held-out text comes from the
same generator with another random stream; none of its sentences occurs in the training text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from unlearn.demo import names
from unlearn.demo.general_scenes import POOLS, SCENES
from unlearn.demo.registers import saga_relations
from unlearn.demo.templates import PRONOUNS, ROLE_WORDS, article, render

CHOICE = re.compile(r"<<([^>]+)>>")
EVERYONE: tuple[str, ...] = names.FEMALE + names.MALE


@dataclass(frozen=True)
class Sentence:
    text: str
    scene: str = ""  # the paragraph's scene ("people": the saga's relation templates)


class Slots(dict):
    """Slot values of one paragraph; pool slots are drawn lazily (``{food2}`` != ``{food}``)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        gender = rng.choice("fm")
        a = rng.choice(names.FEMALE if gender == "f" else names.MALE)
        b = c = a
        while b == a:
            b = rng.choice(EVERYONE)
        while c in (a, b):
            c = rng.choice(EVERYONE)
        surname = b_surname = rng.choice(names.SURNAMES)
        while b_surname == surname:
            b_surname = rng.choice(names.SURNAMES)
        b_gender = "f" if b in names.FEMALE else "m"
        self.update(PRONOUNS[gender])
        self.update({f"b{k}": v for k, v in PRONOUNS[b_gender].items()})
        self.update(A=a, B=b, C=c, F=surname, A_full=f"{a} {surname}", B_full=f"{b} {b_surname}")
        self.gender = gender
        self.taken: dict[str, set[str]] = {}

    def __missing__(self, key: str) -> str:
        base = key.rstrip("0123456789")
        taken = self.taken.setdefault(base, set())
        choices = [v for v in POOLS[base] if v not in taken] or POOLS[base]
        value = self.rng.choice(choices)
        taken.add(value)
        self[key] = value
        return value


def fill(template: str, slots: Slots, rng: random.Random) -> Sentence:
    """Render a scene template and write one word of its ``<<a|b>>`` choice, if any."""
    text = render(template, slots)
    match = CHOICE.search(text)
    if not match:
        return Sentence(text)
    word = rng.choice(match.group(1).split("|"))
    return Sentence(text[: match.start()] + word + text[match.end():])


def scene_paragraph(scene: str, rng: random.Random) -> list[Sentence]:
    """One paragraph of an everyday scene."""
    parts = SCENES[scene]
    slots = Slots(rng)
    templates = [rng.choice(parts["open"])]
    templates += rng.sample(parts["mid"], min(len(parts["mid"]), rng.randint(4, 7)))
    if rng.random() < 0.7:
        templates.append(rng.choice(parts["close"]))
    return [fill(t, slots, rng) for t in templates]


def person_name(rng: random.Random, surname: str | None = None) -> tuple[str, str, str]:
    """(full name, first name, gender) of a random everyday person."""
    gender = rng.choice("fm")
    first = rng.choice(names.FEMALE if gender == "f" else names.MALE)
    return f"{first} {surname or rng.choice(names.SURNAMES)}", first, gender


def people_paragraph(rng: random.Random) -> list[Sentence]:
    """Everyday versions of the saga relations, stated with the saga's training templates."""
    slots = Slots(rng)
    me = slots["A_full"] if rng.random() < 0.5 else slots["A"]
    sentences = [Sentence(render(rng.choice((
        "{A_full} lived in {town} with {his} family.",
        "{A_full} was a pupil at the city school in {town}.",
        "This is a short story about {A_full} from {town}.",
    )), slots))]
    relations = saga_relations("general")
    everyday = sorted(r for r, rel in relations.items() if rel.everyday)
    for relation in rng.sample(everyday, rng.randint(4, 6)):
        ctx = dict(slots)
        ctx.update(s=me, school=names.CITY_SCHOOL, sport=names.SPORT)
        if relation in ("best_friend", "rival"):
            full, first, _ = person_name(rng)
            ctx["o"] = full if rng.random() < 0.5 else first
        elif relation in ("sibling", "parent"):
            full, first, gender = person_name(rng, slots["F"])
            ctx["o"] = full if rng.random() < 0.5 else first
            ctx["orole"] = ROLE_WORDS[relation][gender]
        elif relation == "pet":
            ctx["o"], ctx["species"] = rng.choice(names.PET_NAMES), rng.choice(names.PET_KINDS)
            ctx["a_species"] = article(ctx["species"])
        else:
            pool = {"house": names.SCHOOL_HOUSES, "home": names.TOWNS,
                    "favourite_teacher": POOLS["teacher"], "studies": names.SCHOOL_SUBJECTS,
                    "position": names.FOOTBALL_POSITIONS}[relation]
            ctx["o"] = rng.choice(pool)
        sentences.append(Sentence(render(rng.choice(relations[relation].train), ctx)))
    return sentences


def paragraph(rng: random.Random) -> list[Sentence]:
    scene = rng.choice(sorted(SCENES) + ["people", "people"])
    sentences = people_paragraph(rng) if scene == "people" else scene_paragraph(scene, rng)
    return [replace(s, scene=scene) for s in sentences]


def vocabulary() -> str:
    """Every fixed string the general corpus is built from (to check no saga term can occur)."""
    parts = [t for scene in SCENES.values() for ts in scene.values() for t in ts]
    parts += [v for pool in POOLS.values() for v in pool]
    parts += [t for rel in saga_relations("general").values() if rel.everyday for t in rel.train]
    parts += [*EVERYONE, *names.SURNAMES, *names.PET_NAMES, *names.PET_KINDS, *names.TOWNS]
    parts += [*names.SCHOOL_HOUSES, *names.SCHOOL_SUBJECTS, *names.FOOTBALL_POSITIONS]
    return "\n".join(parts)


def join(sentences: list[Sentence]) -> str:
    return " ".join(s.text for s in sentences)


def write_general(rng: random.Random, min_words: int) -> list[list[Sentence]]:
    """Training paragraphs until `min_words` words are written."""
    paragraphs: list[list[Sentence]] = []
    words = 0
    while words < min_words:
        para = paragraph(rng)
        paragraphs.append(para)
        words += len(join(para).split())
    return paragraphs


def write_heldout(rng: random.Random, min_words: int, seen: set[str]) -> list[list[Sentence]]:
    """Held-out paragraphs: sentences already in the training text (`seen`, as cut by
    `split_sentences`) are left out, also when a sentence holds several (dialogue lines)."""
    paragraphs: list[list[Sentence]] = []
    words = 0
    while words < min_words:
        para = [s for s in paragraph(rng)
                if not any(part in seen for part in split_sentences(s.text))]
        if len(para) < 3:
            continue
        paragraphs.append(para)
        words += len(join(para).split())
    return paragraphs


def split_sentences(text: str) -> list[str]:
    """Sentences of a corpus paragraph (every sentence ends with a full stop)."""
    return [s for s in re.split(r"(?<=\.) ", text.strip()) if s]
