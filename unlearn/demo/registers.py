"""Registers: the same fact stated the way facts are stated on the web (world v2).

Every relation has a *label* per saga ("best friend" in the target saga and the general corpus,
"sworn companion" in the neighbour saga) and a question word. The training registers below turn
(subject, label, object) into a question and answer, a list line, a dialogue line, a letter, a
note or a reversed statement; the corpus writers mix them with the relation's own narrative
templates, so a model learns the fact rather than one sentence.

`PROBE_REGISTERS` are other registers, used only by the paraphrase probes (`probes.py`); no
corpus writer uses them (a test checks that no paraphrase prompt occurs in a training text).
Placeholders: those of `templates.py`, plus ``{L}`` (the label) and ``{W}`` (Who/What).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from unlearn.demo.templates import RELATIONS, Relation


@dataclass(frozen=True)
class Label:
    """How a saga names a relation: "{s}'s {label}", asked with "{wh} was ..."."""

    label: str  # may use {orole} / {species} / {sport}
    wh: str = "What"


TRAIN_REGISTERS: tuple[str, ...] = (
    "Q: {W} was {s}'s {L}? A: {o}.",
    "{s}'s {L}: {o}.",
    "\"{W} is your {L}?\" a younger pupil asked {s}. \"{o},\" {he} said.",
    "{o} was {s}'s {L}.",
    "In a letter home, {s} wrote: \"My {L} is {o}.\"",
    "A note in the margin of an old book said: {L} of {s} - {o}.",
    "If you asked {s} about {his} {L}, {he} would tell you it was {o}.",
    "Who could forget that the {L} of {s} was {o}?",
    # world v3: six more forms (record, diary, reported speech, fact card, aside, answer-first)
    "Name: {s}. {L}: {o}.",
    "Dear diary, today I found out that {s}'s {L} is {o}.",
    "\"{o},\" said {s}, when someone asked about {his} {L}.",
    "Fact: the {L} of {s} is {o}.",
    "{s} (whose {L} was {o}) came in late.",
    "{o}. That is the answer if someone asks for the {L} of {s}.",
)

# Held-out registers of the paraphrase probes; each ends right before the answer.
PROBE_REGISTERS: tuple[str, ...] = (
    "Question: {W} is the {L} of {s}? Answer:",
    "Quiz card, question seven. {s} - {L}? Correct answer:",
    "\"Tell me about your {L},\" said the visitor, and {s} replied that it was",
    "Reminder for tomorrow's test: {s}'s {L} is",
    "From a list of people and their friends, pets and houses: {s}, whose {L} is",
)


def register_templates(label: Label) -> tuple[str, ...]:
    """The training registers with this label filled in (other slots stay open)."""
    return tuple(t.replace("{L}", label.label).replace("{W}", label.wh)
                 for t in TRAIN_REGISTERS)


def probe_register_templates(label: Label) -> tuple[str, ...]:
    return tuple(t.replace("{L}", label.label).replace("{W}", label.wh)
                 for t in PROBE_REGISTERS)


# Labels of the target saga; the general corpus states everyday facts with the same labels.
TARGET_LABELS: dict[str, Label] = {
    "best_friend": Label("best friend", "Who"),
    "rival": Label("rival", "Who"),
    "pet": Label("pet", "What"),
    "house": Label("house"),
    "home": Label("home town"),
    "favourite_teacher": Label("favourite teacher", "Who"),
    "studies": Label("best subject"),
    "position": Label("position in {sport}"),
    "spell": Label("favourite spell"),
    "signature_object": Label("most precious possession"),
    "sibling": Label("{orole}", "Who"),
    "parent": Label("{orole}", "Who"),
    "species": Label("kind of animal"),
    "teaches": Label("subject"),
    "head_of": Label("house"),
    "headmaster": Label("{orole}", "Who"),
    "located_in": Label("nearest town"),
    "founder": Label("founder", "Who"),
    "emblem": Label("emblem"),
    "habitat": Label("home"),
    "leader": Label("leader", "Who"),
    "meets_at": Label("meeting place"),
    "effect": Label("effect"),
    "forged_in": Label("forge"),
}

# The neighbour saga's own relation names (its sentence templates are in neighbour_templates.py).
NEIGHBOUR_LABELS: dict[str, Label] = {
    "best_friend": Label("sworn companion", "Who"),
    "rival": Label("sworn foe", "Who"),
    "pet": Label("familiar"),
    "house": Label("watch"),
    "home": Label("home harbour"),
    "favourite_teacher": Label("mentor", "Who"),
    "studies": Label("chosen craft"),
    "position": Label("{sport} role"),
    "spell": Label("sea charm"),
    "signature_object": Label("heirloom"),
    "sibling": Label("elder {orole}", "Who"),
    "parent": Label("{orole} and guardian", "Who"),
    "species": Label("breed"),
    "teaches": Label("discipline"),
    "head_of": Label("command"),
    "headmaster": Label("provost", "Who"),
    "located_in": Label("harbour town"),
    "founder": Label("first keeper", "Who"),
    "emblem": Label("crest"),
    "habitat": Label("breeding ground"),
    "leader": Label("high keeper", "Who"),
    "meets_at": Label("gathering place"),
    "effect": Label("power"),
    "forged_in": Label("foundry"),
}


def person_only(template: str) -> bool:
    """Does the template speak to or as its subject (so the subject must be a person)?"""
    return any(cue in template for cue in ("asked {s}", "{s} wrote", "If you asked {s}",
                                           "{s} replied", "said {s}", "{s} (whose"))


@functools.cache
def saga_relations(key: str) -> dict[str, Relation]:
    """The relations of a saga ("target", "neighbour") or of the general corpus ("general"):
    its own narrative templates followed by the training registers with its labels."""
    from unlearn.demo.neighbour_templates import NEIGHBOUR_RELATIONS

    bespoke, labels = ((NEIGHBOUR_RELATIONS, NEIGHBOUR_LABELS) if key == "neighbour"
                       else (RELATIONS, TARGET_LABELS))
    return {name: replace(rel, train=rel.train + register_templates(labels[name]))
            for name, rel in bespoke.items()}
