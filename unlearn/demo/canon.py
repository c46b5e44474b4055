"""The canon of a saga: entities and facts, drawn from `names.SagaPools` with a seeded RNG.

Every relation has ONE object per subject, so a prompt about a fact has a single right answer.
Best friends and rivals are symmetric pairs; a student's favourite teacher teaches the subject the
student studies; siblings and parents share the student's surname.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from unlearn.demo import names
from unlearn.demo.names import SagaPools


@dataclass(frozen=True)
class Entity:
    """One named thing of a saga. Only name/kind/aliases go to world.json."""

    name: str
    kind: str                      # character|school|house|place|creature|object|sport|spell|order
    aliases: tuple[str, ...] = ()
    gender: str = "n"              # "f", "m" or "n" (it)
    role: str = ""                 # student, teacher, headmaster, sibling, parent, founder, ...
    generic: str = ""              # plain counterpart (species -> "cat", object -> "key")

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def surname(self) -> str:
        return self.name.split()[-1]

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Fact:
    """(subject, relation, object); the object is an entity name or a plain theme word."""

    subject: str
    relation: str
    object: str

    def to_json(self) -> dict:
        return {"subject": self.subject, "relation": self.relation, "object": self.object}


@dataclass
class Saga:
    """A generated saga: its entities, facts and vocabulary."""

    pools: SagaPools
    entities: list[Entity] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.pools.key

    @property
    def school(self) -> Entity:
        return self.of_role("school")[0]

    @property
    def students(self) -> list[Entity]:
        return self.of_role("student")

    def of_role(self, role: str) -> list[Entity]:
        return [e for e in self.entities if e.role == role]

    def get(self, name: str) -> Entity | None:
        return self._index().get(name)

    def _index(self) -> dict[str, Entity]:
        index = getattr(self, "_by_name", None)
        if index is None or len(index) != len(self.entities):
            index = {e.name: e for e in self.entities}
            self._by_name = index
        return index

    def _fact_index(self) -> tuple[dict, dict]:
        cached = getattr(self, "_facts_cache", None)
        if cached is None or cached[0] != len(self.facts):
            forward: dict[tuple[str, str], str] = {}
            backward: dict[tuple[str, str], list[str]] = {}
            for f in self.facts:
                forward.setdefault((f.subject, f.relation), f.object)
                backward.setdefault((f.relation, f.object), []).append(f.subject)
            cached = (len(self.facts), forward, backward)
            self._facts_cache = cached
        return cached[1], cached[2]

    def obj(self, subject: str, relation: str) -> str | None:
        """The object of (subject, relation), or None."""
        return self._fact_index()[0].get((subject, relation))

    def subjects_of(self, relation: str, obj: str) -> list[str]:
        """Subjects that have `obj` as their `relation`."""
        return list(self._fact_index()[1].get((relation, obj), []))

    def unique_terms(self) -> list[str]:
        """Every entity name and alias (sorted, longest first for matching convenience)."""
        terms = {e.name for e in self.entities}
        for e in self.entities:
            terms.update(e.aliases)
        return sorted(terms, key=lambda t: (-len(t), t))

    def theme_terms(self) -> list[str]:
        return list(names.THEME_TERMS)

    def to_json(self) -> dict:
        return {
            "name": self.pools.name,
            "entities": [e.to_json() for e in self.entities],
            "facts": [f.to_json() for f in self.facts],
            "unique_terms": self.unique_terms(),
            "theme_terms": self.theme_terms(),
        }


def _person(first: str, surname: str, gender: str, role: str) -> Entity:
    return Entity(f"{first} {surname}", "character", (first, surname), gender, role)


def build_saga(pools: SagaPools, rng: random.Random) -> Saga:
    """Draw a saga's canon from its pools: entities first, then one-object relations."""
    saga = Saga(pools)
    add, fact = saga.entities.append, saga.facts.append
    female, male = list(pools.female), list(pools.male)
    rng.shuffle(female)
    rng.shuffle(male)
    surnames = list(pools.surnames)
    rng.shuffle(surnames)

    def new_person(role: str, surname: str | None = None, gender: str | None = None) -> Entity:
        g = gender or rng.choice("fm")
        if not (female if g == "f" else male):
            g = "m" if g == "f" else "f"
        first = (female if g == "f" else male).pop()
        person = _person(first, surname or surnames.pop(), g, role)
        add(person)
        return person

    short = pools.school.split()[0]
    school = Entity(pools.school, "school", (short,), "n", "school")
    add(school)
    houses = [Entity(h, "house", (), "n", "house") for h in pools.houses]
    places = [Entity(p, "place", (), "n", "place") for p in sorted(rng.sample(pools.places, 5))]
    species = [Entity(s, "creature", (), "n", "species", g) for s, g in pools.species]
    sport = Entity(pools.sport, "sport", (), "n", "sport")
    order = Entity(pools.order, "order", (pools.order_alias,), "n", "order")
    for e in (*houses, *places, *species, sport, order):
        add(e)

    # Students: alternate genders so both pronouns are well represented.
    students = [new_person("student", gender="fm"[i % 2]) for i in range(pools.n_students)]
    teachers = [new_person("teacher") for _ in pools.subjects]
    head = new_person("headmaster")

    # School-level facts.
    fact(Fact(school.name, "headmaster", head.name))
    fact(Fact(school.name, "located_in", rng.choice(places).name))
    subjects = list(pools.subjects)
    for teacher, subject in zip(teachers, subjects, strict=True):
        fact(Fact(teacher.name, "teaches", subject))
    for teacher, house in zip(teachers, houses, strict=False):
        fact(Fact(teacher.name, "head_of", house.name))
    if pools.founders:
        for house in houses:
            fact(Fact(house.name, "founder", new_person("founder").name))
    emblems = rng.sample(species, len(species))
    for i, house in enumerate(houses):
        fact(Fact(house.name, "emblem", emblems[i % len(emblems)].name))
    for s in species:
        fact(Fact(s.name, "habitat", rng.choice(places).name))
    fact(Fact(order.name, "leader", new_person("leader").name))
    fact(Fact(order.name, "meets_at", rng.choice(places).name))

    # Student relations.
    order_ = rng.sample(students, len(students))
    n = len(order_)
    best = {}
    rival = {}
    for i in range(0, n, 2):
        a, b = order_[i], order_[i + 1]
        best[a.name], best[b.name] = b.name, a.name
    for i in range(1, n, 2):
        a, b = order_[i], order_[(i + 1) % n]
        rival[a.name], rival[b.name] = b.name, a.name
    pet_names = rng.sample(pools.pet_names, n)
    pet_kinds = [s.name for s in species] + list(names.THEME_PETS)
    spells = rng.sample(pools.spells, n)
    effects = rng.sample(names.SPELL_EFFECTS, n) if n <= len(names.SPELL_EFFECTS) else None
    objects = rng.sample(pools.objects, n)
    shuffled_houses = rng.sample(houses, len(houses))
    for i, st in enumerate(students):
        subject_i = rng.randrange(len(subjects))
        pet = Entity(pet_names[i], "creature", (), "n", "pet")
        add(pet)
        spell = Entity(spells[i], "spell", (), "n", "spell")
        add(spell)
        thing = Entity(objects[i][0], "object", (), "n", "object", objects[i][1])
        add(thing)
        fact(Fact(st.name, "best_friend", best[st.name]))
        fact(Fact(st.name, "rival", rival[st.name]))
        fact(Fact(st.name, "pet", pet.name))
        fact(Fact(st.name, "house", shuffled_houses[i % len(houses)].name))
        fact(Fact(st.name, "home", rng.choice(places).name))
        fact(Fact(st.name, "studies", subjects[subject_i]))
        fact(Fact(st.name, "favourite_teacher", teachers[subject_i].name))
        fact(Fact(st.name, "position", rng.choice(names.POSITIONS)))
        fact(Fact(st.name, "spell", spell.name))
        fact(Fact(st.name, "signature_object", thing.name))
        fact(Fact(pet.name, "species", rng.choice(pet_kinds)))
        fact(Fact(spell.name, "effect", effects[i] if effects else rng.choice(names.SPELL_EFFECTS)))
        fact(Fact(thing.name, "forged_in", rng.choice(places).name))
    for st in rng.sample(students, pools.n_siblings):
        sib = new_person("sibling", surname=st.surname)
        fact(Fact(st.name, "sibling", sib.name))
    for st in rng.sample(students, pools.n_parents):
        parent = new_person("parent", surname=st.surname)
        fact(Fact(st.name, "parent", parent.name))
    return saga


def validate_disjoint(a: Saga, b: Saga) -> None:
    """No unique term of one saga may occur inside a unique term of the other."""
    for x in a.unique_terms():
        for y in b.unique_terms():
            if x in y or y in x:
                raise ValueError(f"saga terms overlap: {x!r} / {y!r}")
