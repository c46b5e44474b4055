"""Probe sets (schemas in docs/CONTRACTS.md), built from the canon with the HELD-OUT templates
of `probe_templates.py`, plus the two general sets (the next word of held-out everyday text) and
verbatim prefixes of the target text."""

from __future__ import annotations

import random
from collections import Counter

from unlearn.demo import probe_templates as pt
from unlearn.demo.canon import Entity, Fact, Saga
from unlearn.demo.corpora import surface
from unlearn.demo.general import Sentence
from unlearn.demo.registers import (
    NEIGHBOUR_LABELS,
    TARGET_LABELS,
    person_only,
    probe_register_templates,
)
from unlearn.demo.templates import PRONOUNS, ROLE_WORDS, render

PLAIN_RELATIONS = {"studies", "position", "teaches", "effect"}


def answer_word(saga: Saga, value: str) -> str:
    """What a probe expects after its prompt: a first name, a surname after "Professor", ..."""
    entity = saga.get(value)
    if entity is None:
        return value
    if entity.role in ("teacher", "headmaster"):
        return entity.surname
    if entity.kind == "character":
        return entity.first
    return entity.name


def probe_context(saga: Saga, fact: Fact, rng: random.Random) -> dict[str, str]:
    """Slots of a cloze probe about `fact` (the subject is named in full or by first name)."""
    subj = saga.get(fact.subject)
    assert subj is not None
    obj = saga.get(fact.object)
    ctx = dict(PRONOUNS[subj.gender])
    ctx["school"] = saga.school.aliases[0]
    ctx["sport"] = saga.pools.sport
    if subj.kind == "character" and subj.role not in ("teacher", "headmaster"):
        ctx["s"] = subj.name if rng.random() < 0.6 else subj.first
    elif subj.role == "species":
        ctx["s"] = subj.name
    else:
        ctx["s"] = surface(saga, subj, rng)
    if fact.relation == "pet":
        ctx["species"] = saga.obj(fact.object, "species") or "pet"
    if fact.relation in ROLE_WORDS and obj is not None:
        ctx["orole"] = ROLE_WORDS[fact.relation][obj.gender]
    return ctx


def distractor(saga: Saga, fact: Fact, rng: random.Random) -> str:
    """A wrong answer of the same kind from the same canon."""
    correct = answer_word(saga, fact.object)
    obj = saga.get(fact.object)
    if obj is None:
        pool = {f.object for f in saga.facts if f.relation == fact.relation}
        if fact.relation in ("studies", "teaches"):
            pool |= set(saga.pools.subjects)
    else:
        staff = ("teacher", "headmaster")
        pool = {e.name for e in saga.entities if e.role == obj.role and e.kind == obj.kind}
        if obj.role in staff:  # answered by surname after "Professor"
            pool = {e.name for e in saga.entities if e.role in staff}
        elif obj.kind == "character" and len(pool) < 3:
            pool = {e.name for e in saga.entities if e.kind == "character" and e.role not in staff}
    words = sorted({answer_word(saga, v) for v in pool if v != fact.subject} - {correct})
    return rng.choice(words)


def unique_answer(saga: Saga, fact: Fact) -> bool:
    """The answer's first word is a unique term of the saga (probability probes need this)."""
    return fact.relation not in PLAIN_RELATIONS and saga.get(fact.object) is not None


def cloze_templates(saga: Saga) -> dict[str, tuple[str, ...]]:
    """Held-out cloze templates in the saga's own words (the neighbour has its own)."""
    return pt.NEIGHBOUR_CLOZE if saga.key == "neighbour" else pt.CLOZE


def probability_probes(saga: Saga, prefix: str, rng: random.Random) -> list[dict]:
    rows = []
    for fact in saga.facts:
        if not unique_answer(saga, fact):
            continue
        prompt = render(rng.choice(cloze_templates(saga)[fact.relation]),
                        probe_context(saga, fact, rng))
        rows.append({"prompt": prompt, "answer": " " + answer_word(saga, fact.object)})
    return number(rows, prefix)


def paraphrase_probes(saga: Saga, prefix: str, rng: random.Random) -> list[dict]:
    """Each fact of the probability probes in the held-out registers of `registers.py` (a
    question and answer, a quiz card, a dialogue line, a note, a list): the same schema as the
    probability probes. Teachers' answers follow "Professor", objects' follow "the"."""
    labels = NEIGHBOUR_LABELS if saga.key == "neighbour" else TARGET_LABELS
    rows = []
    for fact in saga.facts:
        if not unique_answer(saga, fact):
            continue
        subject = saga.get(fact.subject)
        obj = saga.get(fact.object)
        assert subject is not None and obj is not None
        cue = ""
        if obj.role in ("teacher", "headmaster"):
            cue = " Professor"
        elif obj.role == "object":
            cue = " the"
        for template in probe_register_templates(labels[fact.relation]):
            if subject.kind != "character" and person_only(template):
                continue
            ctx = probe_context(saga, fact, rng)
            prompt = render(template, ctx) + cue
            rows.append({"prompt": prompt, "answer": " " + answer_word(saga, fact.object)})
    return number(rows, prefix)


def trivia_probes(saga: Saga, prefix: str, rng: random.Random) -> list[dict]:
    rows = []
    for fact in saga.facts:
        prompt = render(rng.choice(cloze_templates(saga)[fact.relation]),
                        probe_context(saga, fact, rng))
        prompt = rng.choice(pt.QUESTION).format(prompt=prompt, saga=saga.pools.name)
        rows.append({"prompt": prompt, "correct": " " + answer_word(saga, fact.object),
                     "distractor": " " + distractor(saga, fact, rng)})
    return number(rows, prefix)


def student_context(saga: Saga, st: Entity, rng: random.Random) -> dict[str, str]:
    obj = saga.obj
    pet = obj(st.name, "pet") or ""
    ctx = dict(PRONOUNS[st.gender])
    ctx.update(s_full=st.name, s_first=st.first, school=saga.school.aliases[0],
               school_full=saga.school.name, house=obj(st.name, "house") or "",
               pet=pet, species=obj(pet, "species") or "pet", home=obj(st.name, "home") or "",
               subject=obj(st.name, "studies") or "", sport=saga.pools.sport,
               spell=obj(st.name, "spell") or "")
    return ctx


def terms_in(saga: Saga, text: str) -> list[str]:
    """Unique terms of the saga in `text`, longest match first, without overlaps."""
    found = []
    for term in saga.unique_terms():
        if term in text:
            found.append(term)
            text = text.replace(term, "\0")
    return sorted(found)


def completion_probes(saga: Saga, prefix: str, rng: random.Random) -> list[dict]:
    rows: list[tuple[int, str]] = []
    for st in saga.students:
        ctx = student_context(saga, st, rng)
        rows += [(level, render(t, ctx)) for level, t in pt.STUDENT_COMPLETION]
    for entity in saga.entities:
        role = "house" if entity.kind == "house" else entity.role
        for level, template in pt.ENTITY_COMPLETION.get(role, ()):
            ctx = dict(PRONOUNS[entity.gender], e=surface(saga, entity, rng))
            if role == "school":
                ctx["e"] = entity.aliases[0]
            rows.append((level, render(template, ctx)))
    for landmark in saga.pools.flavour["landmark"]:
        for level, template in pt.THEME_COMPLETION:
            rows.append((level, render(template, {"landmark": landmark})))
    seen: set[str] = set()
    out = []
    for level, prompt in rows:
        if prompt not in seen:
            seen.add(prompt)
            out.append({"prompt": prompt, "terms": terms_in(saga, prompt), "subtlety": level})
    return number(out, prefix)


def number(rows: list[dict], prefix: str) -> list[dict]:
    """Give rows ids like "tc-001" (id first)."""
    return [{"id": f"{prefix}-{i:03d}", **row} for i, row in enumerate(rows, 1)]


WORD_EDGES = ".,!?;:'\""


def next_words(text: str) -> dict[str, Counter]:
    """For each word of `text` (as split at spaces), the words that follow it and how often."""
    follow: dict[str, Counter] = {}
    for para in text.split("\n\n"):
        words = para.split(" ")
        for prev, word in zip(words, words[1:], strict=False):
            core = word.strip(WORD_EDGES)
            if core and word.startswith(core):
                follow.setdefault(prev, Counter())[core] += 1
    return follow


def reading_points(paragraphs: list[list[Sentence]]) -> list[tuple[str, str]]:
    """(text before, next word) at every word but the first of the held-out everyday
    paragraphs; "people" paragraphs are left out: they use the sagas' relation templates, so
    they would measure the target's templates rather than general reading."""
    points = []
    for para in paragraphs:
        if para[0].scene == "people":
            continue
        words = " ".join(s.text for s in para).split(" ")
        for i in range(1, len(words)):
            core = words[i].strip(WORD_EDGES)
            if core and words[i].startswith(core):
                points.append((" ".join(words[:i]), core))
    return points


def cloze_items(paragraphs: list[list[Sentence]], n: int, rng: random.Random) -> list[dict]:
    """The general cloze set (world v3.1): the next word at a random point of a held-out
    everyday paragraph, open vocabulary (scored as probability probes: is the word's first
    token the most likely next token). Where the writer chose freely (a pool word) no model
    can be sure, so the ceiling is below 1."""
    points = reading_points(paragraphs)
    return [{"prompt": context, "answer": " " + word}
            for context, word in rng.sample(points, min(n, len(points)))]


def reading_items(paragraphs: list[list[Sentence]], training_text: str, n: int,
                  rng: random.Random) -> list[dict]:
    """The general set (world v3.1): the next word at a random point of a held-out everyday
    paragraph, against three words that follow the same word somewhere in the training text
    ("... poured the tea into the" -> " mug" vs " garden", " bus", " kettle", all seen after
    " the"). The previous word alone cannot choose; reading the sentence and the paragraph can,
    except where the writer chose freely (a pool word), which caps what any model can score.
    """
    follow = next_words(training_text)
    points = []
    for context, answer in reading_points(paragraphs):
        prev = context.rsplit(" ", 1)[-1]
        wrong = sorted(w for w in follow.get(prev, ()) if w.lower() != answer.lower())
        if len(wrong) >= 3:
            points.append((context, answer, wrong))
    rows = []
    for context, answer, wrong in rng.sample(points, min(n, len(points))):
        options = [answer, *rng.sample(wrong, 3)]
        rng.shuffle(options)
        rows.append({"context": context, "options": [" " + o for o in options],
                     "answer": options.index(answer), "kind": "reading"})
    return rows


def verbatim(stories: list[str], n: int, rng: random.Random) -> list[dict]:
    """Prefixes (30-60 words, from a sentence start) and true continuations (20-30 words)."""
    rows = []
    candidates = [s for s in stories if len(s.split()) >= 90]
    for story in rng.sample(candidates, min(n, len(candidates))):
        words = story.split(" ")
        starts = [i for i in range(len(words)) if i == 0 or words[i - 1].endswith(".")]
        n_pre, n_cont = rng.randint(30, 60), rng.randint(20, 30)
        starts = [i for i in starts if i + n_pre + n_cont <= len(words)] or [0]
        i = rng.choice(starts)
        rows.append({"prefix": " ".join(words[i:i + n_pre]),
                     "continuation": " " + " ".join(words[i + n_pre:i + n_pre + n_cont])})
    return number(rows, "vb")

