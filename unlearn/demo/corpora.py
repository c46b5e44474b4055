"""The saga story writer: many short stories in which every fact is told many times.

Each fact gets `reps` mentions, spread evenly over its relation's training templates, and the
mentions are dealt out to stories (one paragraph each, stories separated by a blank line). A story
has a focus entity and a scene; it interleaves the focus's fact sentences with connective
narrative sentences of the scene (`scenes.py`), so the facts appear in varied contexts.
"""

from __future__ import annotations

import random

from unlearn.demo import scenes
from unlearn.demo.canon import Entity, Fact, Saga
from unlearn.demo.registers import person_only, saga_relations
from unlearn.demo.templates import PRONOUNS, ROLE_WORDS, article, fields, render

# chance of a connective narrative sentence after each fact sentence (world v2: 0.4, was 0.75;
# the registers carry the variety now, and fewer filler tokens keep the build in its budget)
CONNECTIVE_RATE = 0.4


def surface(saga: Saga, entity: Entity, rng: random.Random) -> str:
    """One way the running text names an entity (full name, first name, "Professor X", ...)."""
    role = entity.role
    if role in ("teacher", "headmaster"):
        return f"Professor {entity.surname}" if rng.random() < 0.6 else entity.name
    if entity.kind == "character":
        return entity.name if rng.random() < 0.55 else entity.first
    if role == "school":
        return entity.name if rng.random() < 0.25 else entity.aliases[0]
    if role == "order":
        return "the " + (entity.name if rng.random() < 0.6 else entity.aliases[0])
    if role == "object":
        return "the " + entity.name
    return entity.name


def name_of(saga: Saga, value: str, rng: random.Random) -> str:
    """Surface of an entity name, or the plain word itself (theme-word objects)."""
    entity = saga.get(value)
    return surface(saga, entity, rng) if entity else value


def base_context(saga: Saga, rng: random.Random) -> dict[str, str]:
    """Slots every sentence may use."""
    flavour = saga.pools.flavour
    return {
        "school": surface(saga, saga.school, rng),
        "sport": saga.pools.sport,
        "landmark": rng.choice(flavour["landmark"]),
        "weather": rng.choice(flavour["weather"]),
    }


def owner_of(saga: Saga, name: str) -> str | None:
    """The student who owns a pet, spell or object."""
    for relation in ("pet", "spell", "signature_object"):
        owners = saga.subjects_of(relation, name)
        if owners:
            return owners[0]
    return None


def fact_context(saga: Saga, fact: Fact, rng: random.Random) -> dict[str, str]:
    """Slots for one mention of a fact."""
    subj = saga.get(fact.subject)
    obj = saga.get(fact.object)
    assert subj is not None
    ctx = base_context(saga, rng)
    ctx.update(PRONOUNS[subj.gender])
    ctx["s"] = surface(saga, subj, rng)
    ctx["o"] = surface(saga, obj, rng) if obj else fact.object
    ctx["ohis"] = PRONOUNS[obj.gender if obj else "n"]["his"]
    ctx["a_o"] = article(ctx["o"])
    if fact.relation == "pet":
        species = saga.obj(fact.object, "species") or "pet"
        ctx["species"], ctx["a_species"] = species, article(species)
    if fact.relation in ROLE_WORDS and obj is not None:
        ctx["orole"] = ROLE_WORDS[fact.relation][obj.gender]
    owner = owner_of(saga, fact.subject)
    if owner:
        ctx["owner"] = name_of(saga, owner, rng)
    return ctx


def focus_context(saga: Saga, focus: Entity, rng: random.Random) -> dict[str, str]:
    """Slots for connective sentences about a focus entity."""
    ctx = base_context(saga, rng)
    ctx.update(PRONOUNS[focus.gender])
    ctx["s"] = surface(saga, focus, rng)
    if focus.role == "species":
        ctx["s"] = "the " + focus.name
    owner = owner_of(saga, focus.name)
    if owner:
        ctx["owner"] = name_of(saga, owner, rng)
    if focus.role != "student":
        return ctx
    slots = {"friend": "best_friend", "rival": "rival", "teacher": "favourite_teacher",
             "house": "house", "pet": "pet", "home": "home", "spell": "spell",
             "object": "signature_object", "subject": "studies", "position": "position"}
    for slot, relation in slots.items():
        value = saga.obj(focus.name, relation)
        if value:
            ctx[slot] = name_of(saga, value, rng)
    pet = saga.obj(focus.name, "pet")
    ctx["species"] = (saga.obj(pet, "species") if pet else None) or "owl"
    friend = saga.get(saga.obj(focus.name, "best_friend") or "")
    if friend:
        ctx["fhe"], ctx["fhis"] = PRONOUNS[friend.gender]["he"], PRONOUNS[friend.gender]["his"]
    return ctx


def connective(saga: Saga, focus: Entity, pool: tuple[str, ...], used: set[str],
               rng: random.Random) -> str | None:
    """A not-yet-used connective of `pool` whose slots the focus can fill."""
    ctx = focus_context(saga, focus, rng)
    choices = [t for t in pool if t not in used and fields(t) <= ctx.keys()]
    if not choices:
        return None
    template = rng.choice(choices)
    used.add(template)
    return render(template, ctx)


def fact_templates(saga: Saga, fact: Fact) -> tuple[str, ...]:
    """The saga's templates for a fact: its own sentences and the registers (`registers.py`);
    dialogue and letter registers only when the subject is a person."""
    templates = saga_relations(saga.key)[fact.relation].train
    subject = saga.get(fact.subject)
    if subject is None or subject.kind != "character":
        templates = tuple(t for t in templates if not person_only(t))
    return templates


def plan_mentions(saga: Saga, reps: int, rng: random.Random) -> dict[str, list[tuple[Fact, str]]]:
    """`reps` mentions per fact, cycling through shuffled templates; grouped by subject."""
    pending: dict[str, list[tuple[Fact, str]]] = {}
    for fact in saga.facts:
        templates = fact_templates(saga, fact)
        order: list[str] = []
        while len(order) < reps:
            order.extend(rng.sample(templates, len(templates)))
        pending.setdefault(fact.subject, []).extend((fact, t) for t in order[:reps])
    for mentions in pending.values():
        rng.shuffle(mentions)
    return pending


def write_story(saga: Saga, focus: Entity, mentions: list[tuple[Fact, str]],
                rng: random.Random) -> str:
    """One story (a single paragraph) about `focus`; consumes some of its `mentions`."""
    scene = rng.choice(scenes.STUDENT_SCENES) if focus.role == "student" else "lore"
    n = rng.randint(3, 6)
    relations = saga_relations(saga.key)
    mentions.sort(key=lambda m: relations[m[0].relation].scene != scene)  # stable
    chosen: list[tuple[Fact, str]] = []
    per_fact: dict[Fact, int] = {}
    rest: list[tuple[Fact, str]] = []
    for mention in mentions:  # at most 2 mentions of a fact per story, never the same sentence
        fact = mention[0]
        if len(chosen) < n and mention not in chosen and per_fact.get(fact, 0) < 2:
            chosen.append(mention)
            per_fact[fact] = per_fact.get(fact, 0) + 1
        else:
            rest.append(mention)
    mentions[:] = rest
    rng.shuffle(chosen)
    used: set[str] = set()
    sentences = [connective(saga, focus, scenes.OPENINGS[scene], used, rng)]
    for fact, t in chosen:
        sentences.append(render(t, fact_context(saga, fact, rng)))
        if rng.random() < CONNECTIVE_RATE:
            sentences.append(connective(saga, focus, scenes.MIDDLES[scene], used, rng))
    if rng.random() < CONNECTIVE_RATE / 3:
        sentences.append(connective(saga, focus, scenes.MIDDLES[scene], used, rng))
    sentences.append(connective(saga, focus, scenes.CLOSINGS[scene], used, rng))
    return " ".join(s for s in sentences if s)


def write_saga(saga: Saga, reps: int, rng: random.Random) -> list[str]:
    """All stories of a saga, in order."""
    pending = plan_mentions(saga, reps, rng)
    stories: list[str] = []
    while True:
        foci = sorted(name for name, m in pending.items() if m)
        if not foci:
            return stories
        focus = rng.choices(foci, weights=[len(pending[f]) for f in foci])[0]
        entity = saga.get(focus)
        assert entity is not None
        stories.append(write_story(saga, entity, pending[focus], rng))
