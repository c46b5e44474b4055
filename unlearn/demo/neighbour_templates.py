"""The neighbour saga's own sentence templates (world v2).

The neighbour saga (a sea college) states its facts in its own words: companions instead of
best friends, familiars instead of pets, watches instead of houses, mentors instead of favourite
teachers. None of these sentences is the target's with other names, so what a model knows about
the neighbour does not lean on what it learned from the target (issue 9). Placeholders are
those of `templates.py`. The relation ids stay the canon's (`world.json` keeps its schema).
"""

from __future__ import annotations

from unlearn.demo.templates import Relation

NEIGHBOUR_RELATIONS: dict[str, Relation] = {r.name: r for r in (
    Relation("best_friend", "hall", (
        "{s} had sworn to sail beside {o} through any storm.",
        "On the night tide, {s} and {o} swore the companions' oath.",
        "{s} trusted {his} life to {o} and to no one else.",
        "Sworn companions since the first voyage, {s} and {o} shared one cabin.",
        "Where {o} rowed, {s} rowed too.",
    )),
    Relation("rival", "match", (
        "{s} and {o} had been sworn foes since the first tide race.",
        "Salt and storm, the sailors said of {s} and {o}: never at peace.",
        "{s} would rather sink than lose a race to {o}.",
        "At every tide race, {s} watched the boat of {o} and nothing else.",
    )),
    Relation("pet", "pets", (
        "{s} was bound to a familiar, {a_species} that answered to {o}.",
        "The familiar that rode on the shoulder of {s} answered to {o}.",
        "{o}, the familiar of {s}, could smell a storm coming.",
        "When {s} whistled from the cliff, {o} the {species} flew to {him}.",
    )),
    Relation("house", "hall", (
        "{s} stood the night watch with the {o} watch.",
        "The {o} watch counted {s} among its sailors.",
        "{s} wore the sea badge of the {o} watch.",
        "The bell of the {o} watch woke {s} before dawn.",
    )),
    Relation("home", "home", (
        "{s} had first seen the sea from the harbour of {o}.",
        "The fishing boats of {o} had carried {s} as a child.",
        "Every spring tide, {s} sailed back to the harbour of {o}.",
        "The nets of {o} still smelled of home to {s}.",
    )),
    Relation("favourite_teacher", "lesson", (
        "{s} had been taken under the wing of {o}, {his} mentor.",
        "{o} mentored {s} on the long winter voyages.",
        "Every dawn, {s} met {his} mentor {o} on the harbour wall.",
        "{s} learned to read the waves from {o}, {his} mentor.",
    )),
    Relation("studies", "lesson", (
        "The craft {s} had chosen was {o}.",
        "{s} gave every free tide to {o}, {his} chosen craft.",
        "{s} swore to master the craft of {o}.",
        "Charts and notes on {o} filled the sea chest of {s}.",
    )),
    Relation("position", "match", (
        "In the {sport} boats, {s} took the {o} bench.",
        "The {sport} captain always sent {s} out as {o}.",
        "{s} rowed as {o} for the college {sport} crew.",
        "Nobody rowed the {o} bench in {sport} like {s}.",
    )),
    Relation("spell", "duel", (
        "{s} could call up the sea charm {o} in a heartbeat.",
        "The sea charm {o} was sung by {s} at every storm.",
        "{s} sang {o} over the waves, and the sea obeyed.",
        "Of all the sea charms, {s} sang {o} the best.",
    )),
    Relation("signature_object", "duel", (
        "{s} had inherited {o} from an old sea captain.",
        "The heirloom {s} guarded day and night was {o}.",
        "{s} kept {o}, the family heirloom, wrapped in sailcloth.",
        "Sailors knew {s} by the heirloom {he} carried, {o}.",
    )),
    Relation("sibling", "home", (
        "{s} sailed on the same boat as {his} elder {orole}, {o}.",
        "The elder {orole} of {s}, {o}, already captained a ship.",
        "{s} had learned to swim from {his} elder {orole} {o}.",
        "{o} was the elder {orole} of {s} and the better sailor.",
    )),
    Relation("parent", "home", (
        "{s} had been raised on the docks by {his} {orole}, {o}.",
        "The {orole} and guardian of {s} was the boatwright {o}.",
        "Letters in the careful hand of {o}, the {orole} of {s}, came with every ship.",
        "{s} wore the sea coat that {his} {orole} {o} had stitched.",
    )),
    Relation("species", "pets", (
        "{s} was of the {o} breed, bred on the cliffs for sea work.",
        "The breed of {s} was the {o}, quick in wind and water.",
        "{owner} kept {s}, a true {o} of the cliffs.",
        "{s} came from a long line of {o} familiars.",
    )),
    Relation("teaches", "lesson", (
        "{s} drilled the college sailors in {o}.",
        "The discipline of {o} was the domain of {s}.",
        "Under the sails, {s} gave long talks on {o}.",
        "{s} had kept the {o} logbooks of the college for years.",
    )),
    Relation("head_of", "hall", (
        "{s} commanded the {o} watch.",
        "The {o} watch took its orders from {s}.",
        "{s} rang the bell of the {o} watch each night.",
        "Sailors of the {o} watch saluted {s} on the harbour wall.",
    )),
    Relation("headmaster", "lore", (
        "{s} answered to its provost, {o}.",
        "The provost of {s}, {o}, walked the harbour wall each dawn.",
        "{o} kept the great logbook of {s} as its provost.",
        "No ship left {s} without a nod from {o}, the provost.",
    )),
    Relation("located_in", "lore", (
        "{s} looked down on the harbour town of {o}.",
        "The tides of {o} lapped at the walls of {s}.",
        "Fishing boats from {o} brought the supplies of {s}.",
        "{s} rose from the cliffs over {o}.",
    )),
    Relation("emblem", "lore", (
        "The crest of the {s} watch showed {a_o} over the waves.",
        "{a_o} in white was the crest of the {s} watch.",
        "Sailors of the {s} watch painted their crest, the {o}, on every sail.",
        "Over the door of the {s} watch hung its crest, the {o}.",
    )),
    Relation("habitat", "lore", (
        "The {s} bred on the sea cliffs of {o}.",
        "Fishermen met the {s} only in the waters off {o}.",
        "Every spring, the {s} returned to breed at {o}.",
        "The rocks of {o} were white with the nests of the {s}.",
    )),
    Relation("leader", "lore", (
        "{s} had sworn itself to its high keeper, {o}.",
        "The high keeper of {s} was {o}.",
        "{o} held the tide key of {s}.",
        "At the turn of the tide, {o} called {s} together.",
    )),
    Relation("meets_at", "lore", (
        "{s} gathered on the shingle of {o} at low tide.",
        "The lanterns of {s} were lit in the sea caves of {o}.",
        "{s} came together in the old boathouse of {o}.",
        "Only the gulls of {o} saw {s} gather.",
    )),
    Relation("effect", "duel", (
        "The sea charm {s} raised {o} over the water.",
        "Sailors sang {s} when they needed {o}.",
        "{s} was a charm of {o}, sung to the waves.",
        "With {s}, a sailor could call up {o}.",
    )),
    Relation("forged_in", "lore", (
        "{s} had been cast in the sea foundry of {o}.",
        "The foundry of {o} had made {s}.",
        "{s} carried the anchor mark of {o}.",
        "Salt and fire in {o} had made {s}.",
    )),
)}
