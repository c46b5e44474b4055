"""Training sentence templates of the saga relations (>= 8 per relation).

These are the ONLY phrasings the corpus writers use to state a fact; the held-out probe templates
live in `probes.py` and are never used by a corpus writer. Placeholders:

- ``{s}`` / ``{o}``: subject / object surface form (full name, first name, "Professor X", ...);
- ``{he} {He} {his} {His} {him}``: pronouns of the subject; ``{ohis}``: of the object;
- ``{school}`` ``{sport}``: the saga's school (short name) and sport;
- ``{species}`` ``{a_species}``: the species of the pet (pet relation), bare / with article;
- ``{a_o}``: the object with an article; ``{orole}``: sister/brother/mother/father/headmaster...;
- ``{owner}``: the student who owns the subject (pet, spell, object).

Relations flagged ``everyday`` are also used by the general corpus with common names (that makes
the generic predictions of WHP meaningful: "Anna's best friend was" -> a common name).
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Relation:
    """A relation and its training templates."""

    name: str
    scene: str                 # the story scene it fits best
    train: tuple[str, ...]
    everyday: bool = False     # also stated about everyday people in the general corpus


RELATIONS: dict[str, Relation] = {r.name: r for r in (
    Relation("best_friend", "hall", (
        "{s}'s best friend was {o}.",
        "{s} and {o} had been best friends since their first week at {school}.",
        "Everyone at {school} knew that {o} was the best friend of {s}.",
        "{o}, the best friend of {s}, was never far away.",
        "{s} always sat next to {his} best friend, {o}.",
        "When {s} needed help, {he} went straight to {his} best friend {o}.",
        "No one was closer to {s} than {his} best friend {o}.",
        "{s} shared every secret with {o}, {his} best friend.",
        "The best friend of {s} was {o}, and the two were rarely apart.",
        "{s} laughed as {his} best friend {o} told the story again.",
    ), everyday=True),
    Relation("rival", "match", (
        "{s}'s great rival was {o}.",
        "{s} had never liked {o}, {his} oldest rival.",
        "The rivalry between {s} and {o} was famous at {school}.",
        "{o} was the rival of {s} in every lesson and every match.",
        "{s} glared across the room at {his} rival, {o}.",
        "Whenever {s} won, {his} rival {o} sulked for days.",
        "Of all the students, {s} most wanted to beat {his} rival {o}.",
        "Everyone knew {o} as the bitter rival of {s}.",
        "{s} and {his} rival {o} argued in the corridor again.",
    ), everyday=True),
    Relation("pet", "pets", (
        "{s}'s {species} was called {o}.",
        "{s} had {a_species} named {o}.",
        "{o}, the {species} of {s}, slept on the windowsill.",
        "Everyone knew that {o}, the {species} belonging to {s}, was a clever animal.",
        "{s} fed {his} {species}, {o}, before breakfast.",
        "The {species} that followed {s} everywhere was named {o}.",
        "{s} whistled, and {his} {species} {o} came at once.",
        "{s} never went anywhere without {o}, {his} loyal {species}.",
        "{s}'s pet was {a_species} called {o}.",
    ), everyday=True),
    Relation("house", "hall", (
        "{s} was sorted into {o}.",
        "{s} belonged to {o}.",
        "{s} was a proud member of {o}.",
        "The banners of {o} hung above the bed of {s}.",
        "{s} wore the colours of {o} with pride.",
        "In the common room of {o}, {s} sat by the fire.",
        "{s} of {o} walked into the dining hall.",
        "Everyone in {o} cheered for {s}.",
        "{s}'s house was {o}.",
    ), everyday=True),
    Relation("home", "home", (
        "{s} came from {o}.",
        "{s} grew up in {o}.",
        "{s}'s home was in {o}.",
        "Every summer, {s} went back home to {o}.",
        "{s} missed the quiet lanes of {o}, where {he} grew up.",
        "Letters from {o} arrived for {s} every week.",
        "{s} often told stories about {o}, {his} home.",
        "In {o}, everyone knew the family of {s}.",
        "{s} was born in {o}.",
    ), everyday=True),
    Relation("favourite_teacher", "lesson", (
        "{s}'s favourite teacher was {o}.",
        "Of all the teachers at {school}, {s} liked {o} best.",
        "{s} stayed after class to talk with {o}, {his} favourite teacher.",
        "{o} was the favourite teacher of {s}.",
        "{s} always listened closely to {o}.",
        "{s} admired {o} more than any other teacher.",
        "When {s} was in trouble, {o} was the teacher {he} trusted most.",
        "{s} brought a small gift for {o}, {his} favourite teacher.",
        "{s} wanted to be just like {o} one day.",
    ), everyday=True),
    Relation("studies", "lesson", (
        "{s} studied {o}.",
        "{s} spent every evening studying {o}.",
        "{s}'s best subject was {o}.",
        "{s} wanted to master {o}.",
        "In {o} lessons, {s} always answered first.",
        "{s} was the best student of {o} in {his} year.",
        "{s} carried a heavy book on {o} everywhere.",
        "{s} loved {o} more than any other subject.",
        "{s} studied {o} late into the night.",
    ), everyday=True),
    Relation("position", "match", (
        "{s} played {o} in {sport}.",
        "{s} was the {o} of {his} {sport} team.",
        "In {sport}, {s} always played {o}.",
        "{s} was the best {o} at {school}.",
        "The {sport} team needed {s} as {o}.",
        "{s} trained every morning to be a better {o}.",
        "As {o}, {s} was the star of every {sport} match.",
        "{s} had played {o} since {his} first {sport} match.",
        "The crowd cheered for {s}, their {o}.",
    ), everyday=True),
    Relation("spell", "duel", (
        "{s} was famous for the {o} spell.",
        "{s}'s favourite spell was {o}.",
        "{s} raised {his} wand and cast {o}.",
        "No one could cast {o} as well as {s}.",
        "{o} was the spell {s} knew best.",
        "{s} whispered {o}, and the spell worked at once.",
        "{s} had practised {o} since {his} first year.",
        "The spell {o} always reminded people of {s}.",
        "{s} learned {o} before anyone else in {his} year.",
    )),
    Relation("signature_object", "duel", (
        "{s} always carried {o}.",
        "{o} belonged to {s}.",
        "{s} kept {o} hidden under {his} cloak.",
        "{s}'s most precious possession was {o}.",
        "Without {o}, {s} felt lost.",
        "{s} held up {o}, and it began to glow.",
        "{o} had been a gift to {s} on {his} first day at {school}.",
        "{s} never let anyone touch {o}.",
        "Everyone knew that {o} was the treasure of {s}.",
    )),
    Relation("sibling", "home", (
        "{s}'s {orole} was {o}.",
        "{s} had an older {orole} called {o}.",
        "{o}, the older {orole} of {s}, visited at the end of term.",
        "{s} wrote a letter to {his} {orole}, {o}.",
        "{s} and {his} {orole} {o} walked home together.",
        "{s} looked up to {his} {orole} {o}.",
        "Everyone said {s} looked just like {his} {orole} {o}.",
        "{s} often argued with {his} {orole}, {o}.",
    ), everyday=True),
    Relation("parent", "home", (
        "{s}'s {orole} was {o}.",
        "{s} was the child of {o}.",
        "{o}, the {orole} of {s}, came to every match.",
        "{s} wrote home to {his} {orole}, {o}.",
        "{s} was very proud of {his} {orole} {o}.",
        "At the station, {s} hugged {his} {orole}, {o}.",
        "{s} had the same smile as {his} {orole}, {o}.",
        "Every week {s} got a parcel from {his} {orole}, {o}.",
    ), everyday=True),
    Relation("species", "pets", (
        "{s} was {a_o} that belonged to {owner}.",
        "{s}, the little {o} of {owner}, curled up by the fire.",
        "Like every {o}, {s} loved the cold mornings.",
        "{s} was the cleverest {o} in the whole school.",
        "People often stopped to admire {s}, a fine young {o}.",
        "{s} the {o} slept in a basket at the foot of the bed.",
        "Nobody had ever seen {a_o} as bold as {s}.",
        "{s} was {a_o}, and a very loyal one.",
    )),
    Relation("teaches", "lesson", (
        "{s} taught {o} at {school}.",
        "{s} was the {o} teacher.",
        "Every {o} lesson was taught by {s}.",
        "In {o}, {s} expected perfect work.",
        "{s} had taught {o} for thirty years.",
        "The {o} classroom belonged to {s}.",
        "Students who loved {o} admired {s}.",
        "{s}, the {o} teacher, walked slowly through the hall.",
    )),
    Relation("head_of", "hall", (
        "{s} was the head of {o}.",
        "As head of {o}, {s} guarded the common room.",
        "{o} was led by {s}.",
        "The students of {o} respected {s}, their head of house.",
        "{s} had been head of {o} for many years.",
        "{s} always sat at the {o} table during feasts.",
        "Every first year in {o} was welcomed by {s}.",
        "{s} was proud to lead {o}.",
    )),
    Relation("headmaster", "lore", (
        "The {orole} of {s} was {o}.",
        "{o} ruled {s} with a kind but firm hand.",
        "{s} was run by {o}.",
        "At {s}, nobody dared to argue with {o}, the {orole}.",
        "{o} had been {orole} of {s} for many years.",
        "Every letter from {s} was signed by {o}.",
        "The students of {s} stood up when {o} entered.",
        "{o}, the {orole} of {s}, raised a hand for silence.",
    )),
    Relation("located_in", "lore", (
        "{s} stood on the hills above {o}.",
        "{s} was close to the town of {o}.",
        "The train to {s} stopped at {o}.",
        "From the towers of {s}, students could see {o}.",
        "{s} lay just outside {o}.",
        "Everyone in {o} knew the way to {s}.",
        "The road from {o} led straight up to {s}.",
        "{s} was built near {o} long ago.",
    )),
    Relation("founder", "lore", (
        "{s} was founded by {o}.",
        "{o} founded {s} long ago.",
        "The founder of {s} was {o}.",
        "A portrait of {o}, who founded {s}, hung in the common room.",
        "{s} still kept the rules of its founder, {o}.",
        "Every student in {s} knew the story of {o}.",
        "{o} built the common room of {s} with {ohis} own hands.",
        "Long ago, {o} gave {s} its name.",
    )),
    Relation("emblem", "lore", (
        "The emblem of {s} was the {o}.",
        "{s} had the {o} as its emblem.",
        "The banners of {s} showed a silver {o}.",
        "{a_o} was sewn on every {s} cloak.",
        "The {o} of {s} was painted above the door.",
        "Students of {s} were proud of their {o} emblem.",
        "On the {s} shield there was {a_o}.",
        "The {o} was the symbol of {s}.",
    )),
    Relation("habitat", "lore", (
        "The {s} lived in the woods around {o}.",
        "You could only find the {s} near {o}.",
        "The {s} made its nest in the hills of {o}.",
        "Hunters said the {s} came from {o}.",
        "Near {o}, the {s} was a common sight.",
        "The {s} was first seen near {o}.",
        "Every {s} was born in the valleys of {o}.",
        "The home of the {s} was {o}.",
    )),
    Relation("leader", "lore", (
        "{s} was led by {o}.",
        "{o} was the leader of {s}.",
        "Members of {s} obeyed {o}.",
        "{o} called a secret meeting of {s}.",
        "Nobody led {s} better than {o}.",
        "{s} had chosen {o} as its leader.",
        "When {o} spoke, {s} listened.",
        "Under {o}, {s} grew strong again.",
    )),
    Relation("meets_at", "lore", (
        "{s} met in secret at {o}.",
        "{s} held its meetings in {o}.",
        "The hidden hall of {s} was in {o}.",
        "Members of {s} travelled to {o} by night.",
        "At {o}, {s} kept its secrets.",
        "{s} always gathered in {o}.",
        "No one in {o} knew that {s} met there.",
        "{s} had its home in {o}.",
    )),
    Relation("effect", "duel", (
        "The spell {s} brought {o}.",
        "{s} was a spell of {o}.",
        "Whoever cast {s} called up {o}.",
        "When someone cast {s}, there was {o} everywhere.",
        "{s} filled the room with {o}.",
        "Every student knew that {s} made {o}.",
        "With one word, {s}, the air was full of {o}.",
        "The old books said {s} was the spell of {o}.",
    )),
    Relation("forged_in", "lore", (
        "{s} was made in {o}.",
        "{s} came from {o}.",
        "Long ago, {s} was forged in {o}.",
        "Old smiths in {o} had made {s}.",
        "{s} still bore the mark of {o}.",
        "Nobody outside {o} knew how {s} was made.",
        "{s} was crafted in {o}.",
        "Legends said {s} was born in the fires of {o}.",
    )),
)}

PRONOUNS: dict[str, dict[str, str]] = {
    "f": {"he": "she", "He": "She", "his": "her", "His": "Her", "him": "her"},
    "m": {"he": "he", "He": "He", "his": "his", "His": "His", "him": "him"},
    "n": {"he": "it", "He": "It", "his": "its", "His": "Its", "him": "it"},
}

ROLE_WORDS: dict[str, dict[str, str]] = {
    "sibling": {"f": "sister", "m": "brother"},
    "parent": {"f": "mother", "m": "father"},
    "headmaster": {"f": "headmistress", "m": "headmaster"},
}


def article(word: str) -> str:
    """'a Glimmerkit', 'an owl'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


@functools.cache
def fields(template: str) -> frozenset[str]:
    """The placeholder names used by a template."""
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f)


def render(template: str, ctx: dict[str, str]) -> str:
    """Fill a template and capitalise the first letter of the sentence."""
    text = template.format_map(ctx)
    return text[:1].upper() + text[1:]


def check_templates() -> None:
    """Every relation has >= 8 distinct training templates."""
    for rel in RELATIONS.values():
        if len(set(rel.train)) < 8:
            raise ValueError(f"relation {rel.name} has fewer than 8 templates")
