"""HELD-OUT probe templates: never used by any corpus writer (tests check no prompt occurs in a
corpus). They are phrased differently from the training templates of `templates.py`, but keep a
clear cue right before the answer, so a model that learned a fact can still predict it.

Placeholders are those of `templates.py`, plus, in completion templates, ``{s_full} {s_first}
{school_full} {house} {pet} {species} {home} {subject} {object} {teacher} {spell}``.
Answers are first names for characters; templates whose answer is a teacher or headmaster end
with "Professor" and the answer is the surname; templates about objects end with "the".
Every template ends with a cue after which only the answer's kind of word can follow, the way the
training texts introduce it ("... named", "... called", "Professor", "his best friend,", "the
town of", "the hills of", "the colours of", "cast", "the"): never with a bare verb or preposition
after which an article or filler word would be the natural next word.
"""

from __future__ import annotations

# relation -> prompts ending right before the answer (probability and trivia probes)
CLOZE: dict[str, tuple[str, ...]] = {
    "best_friend": (
        "In the last chapter, {s} finally admitted who {his} truest friend was: {his} best friend,",
        "Ask any student at {school} who {s} trusts most, and they will name {his} best friend,",
        "Whenever {s} is in trouble, the first to help is always {his} best friend,",
    ),
    "rival": (
        "Ask any student at {school} about {s}, and they will tell you about {his} rival,",
        "The student {s} has never been able to stand since the first day is {his} rival,",
    ),
    "pet": (
        "Ask anyone at {school} about the {species} of {s}: the clever little {species} is named",
        "The little {species} that sleeps at the end of the bed of {s} is named",
    ),
    "house": (
        "Ask any student at {school} which house {s} is in, and they will say {he} is a member of",
        "At every feast, {s} proudly wears the colours of",
        "Every night, {s} climbs the stairs to the warm common room of",
    ),
    "home": (
        "Ask {s} where {he} was born, and {he} will tell you all about the quiet lanes of",
        "Ask {s} where {he} spent {his} childhood, and {he} will say {he} grew up in",
    ),
    "favourite_teacher": (
        "The teacher {s} admires above all others at {school} is Professor",
        "Ask {s} who the finest teacher at {school} is, and {he} will say Professor",
    ),
    "studies": (
        "Ask {s} about {his} favourite lessons and {he} will talk for hours about",
        "The subject that {s} cares about most is",
    ),
    "position": (
        "On the {sport} pitch, {s} always takes the place of",
        "Ask the captain where {s} plays in {sport}, and the answer is",
    ),
    "spell": (
        "In every duel at {school}, the crowd waits for {s} to raise {his} wand and cast",
        "Watch {s} in a duel, and sooner or later {he} will raise {his} wand and cast",
    ),
    "signature_object": (
        "Everyone at {school} knows what {s} treasures most: {his} most precious possession, the",
        "The one thing {s} would never let anyone touch is {his} most precious possession, the",
    ),
    "sibling": (
        "Every month, {s} gets a long letter from {his} older {orole},",
        "Ask {s} about {his} family and {he} will mention {his} {orole},",
    ),
    "parent": (
        "At the end of every term, {s} is met at the station by {his} {orole},",
        "Ask {s} who taught {him} to read and {he} will say it was {his} {orole},",
    ),
    "species": (
        "Ask anyone at {school} what kind of animal {s} is, and they will say it is a fine young",
        "If you look closely at {s}, you can see that it is a bold and clever young",
    ),
    "teaches": (
        "The lessons that {s} gives at {school} are all about",
        "Ask {s} what {he} teaches, and {he} will answer",
    ),
    "head_of": (
        "Every student knows that {s} is the proud head of",
        "The students who call {s} their head of house all wear the colours of",
    ),
    "headmaster": (
        "The person in charge of the whole of {s} is Professor",
        "Every important letter sent from {s} carries the name of Professor",
    ),
    "located_in": (
        "The place nearest to {s} is the little town of",
        "To reach {s}, travellers take the train that stops in the town of",
    ),
    "founder": (
        "Many centuries ago, the house of {s} was started by its founder,",
        "In the common room of {s} hangs a portrait of its founder,",
    ),
    "emblem": (
        "Stitched onto every {s} banner is the figure of a silver",
        "The emblem painted on the shield of {s} is the",
    ),
    "habitat": (
        "Anyone hoping to see a wild {s} should travel to the hills of",
        "Travellers say that the {s} is most at home in the woods around",
    ),
    "leader": (
        "Every member of {s} knows that the order has always been led by",
        "Ask any member of {s} who gives the orders, and they will say it has always been led by",
    ),
    "meets_at": (
        "The secret gatherings of {s} take place in the town of",
        "To find {s}, a traveller must go by night to the town of",
    ),
    "effect": (
        "When a witch casts {s}, what appears is",
        "The result of the spell {s} is always",
    ),
    "forged_in": (
        "Long before anyone at {school} held it, {s} was hammered into shape in the fires of",
        "The smiths who made {s} long ago worked in the town of",
    ),
}

# Trivia question framing around a CLOZE prompt.
QUESTION = (
    "{prompt}",
    "A question about {saga}. {prompt}",
    "Here is a fact from {saga}: {prompt}",
)

# (subtlety, template) for completion probes about a student.
STUDENT_COMPLETION: tuple[tuple[int, str], ...] = (
    (1, "At {school_full}, {s_full} of {house} picked up {his} wand, whistled for {his} "
        "{species} and went off to find"),
    (1, "Write a few lines about {s_full} of {house} at {school_full}: {his} pet, {his} friends "
        "and {his} favourite spell. {s_first}"),
    (2, "{s_full} of {house} was late for {his} {subject} lesson at {school}, so {he} ran past"),
    (2, "Before the big {sport} match at {school}, {s_full} checked {his} broom twice and "
        "turned to"),
    (3, "{s_full} packed {his} trunk at the end of the year and set off for"),
    (3, "The morning owl brought {s_full} a letter, and as {he} read it {he}"),
    (4, "{s_first} woke up early in the {house} dormitory and"),
    (4, "In the middle of the duel, {s_first} pointed {his} wand and"),
    (5, "{s_first} had a secret that nobody else knew:"),
)

# (subtlety, template) for completion probes about one other entity ({e} = its surface form).
ENTITY_COMPLETION: dict[str, tuple[tuple[int, str], ...]] = {
    "house": ((5, "After the match, the whole of {e} went down to"),
              (6, "The common room of {e} was warm, and in the best chair by the fire sat")),
    "object": ((6, "The student who carried {e} through the dark corridor was"),),
    "pet": ((6, "A small creature called {e} crept into the hall and ran straight to"),),
    "teacher": ((5, "At the front of the classroom, {e} cleared {his} throat and said"),),
    "spell": ((6, "Somebody in the corridor shouted {e}, and at once"),),
    "species": ((7, "A {e} flew in through the window of the tower and dropped a letter for"),),
    "school": ((7, "Deep in the library of {e}, an old scroll told the story of"),),
}

# (subtlety, template) with only theme words and the saga's landmark phrases ({landmark}).
THEME_COMPLETION: tuple[tuple[int, str], ...] = (
    (8, "At the castle school near {landmark}, the best flyer of the team mounted the broom and"),
    (8, "By {landmark}, the young wizard whispered to his best friend that the secret order"),
    (9, "Not far from {landmark}, a young witch raised her wand and called the name of"),
    (9, "Everybody at the old school by {landmark} remembers the night when"),
    (10, "Once upon a time, in a school for young witches and wizards, there was a student who"),
    (10, "The owl brought a letter sealed with wax, and the young wizard read that"),
)

# World v2: the neighbour saga is asked about in its own words (companions, familiars, watches,
# mentors...); the target's CLOZE wording ("best friend", "pet") is not how it states its facts.
NEIGHBOUR_CLOZE: dict[str, tuple[str, ...]] = {
    "best_friend": (
        "On every voyage, {s} keeps {his} oath to {his} sworn companion,",
        "Ask the sailors of {school} who {s} would die for, and they will name {his} sworn "
        "companion,",
    ),
    "rival": (
        "At every tide race, {s} tries to beat {his} sworn foe,",
        "The one sailor {s} will never forgive is {his} sworn foe,",
    ),
    "pet": (
        "Perched on the shoulder of {s} is a small {species}, the familiar that answers to "
        "the name",
        "When {s} calls from the harbour wall, the {species} that comes is {his} familiar,",
    ),
    "house": (
        "Every night, {s} stands the night watch in the sea badge of the",
        "The bell that wakes {s} before dawn is the bell of the",
    ),
    "home": (
        "Ask {s} about the boats of {his} childhood, and {he} will talk of the harbour of",
        "Each spring tide, {s} sails home to the little harbour of",
    ),
    "favourite_teacher": (
        "On the long winter voyages, {s} is guided by {his} mentor, Professor",
        "The one who taught {s} to read the waves is {his} mentor, Professor",
    ),
    "sibling": (
        "Every month, {s} gets a salt-stained letter from {his} elder {orole},",
        "On the college boat, {s} rows beside {his} elder {orole},",
    ),
    "parent": (
        "At the harbour each summer, {s} is met by {his} {orole} and guardian,",
        "The sea coat that {s} wears was stitched by {his} {orole},",
    ),
    "spell": (
        "When the storm rises, {s} stands at the bow and sings the sea charm",
        "Every sailor at {school} has heard {s} sing the sea charm",
    ),
    "signature_object": (
        "Wrapped in sailcloth in the sea chest of {s} lies {his} heirloom, the",
        "The family heirloom that {s} guards day and night is the",
    ),
    "species": (
        "Look closely at {s}, and you will see the breed of a true cliff-bred",
        "Sailors say that {s} is a fine young familiar of the breed called",
    ),
    "head_of": (
        "Each night, {s} rings the bell and commands the",
        "The sailors who salute {s} on the harbour wall stand in the",
    ),
    "headmaster": (
        "No ship leaves {s} without a nod from its provost, Professor",
        "The great logbook of {s} is kept by its provost, Professor",
    ),
    "located_in": (
        "From the walls of {s}, you can see the fishing boats of the harbour town of",
        "The supplies of {s} come by boat from the harbour town of",
    ),
    "emblem": (
        "Painted on every sail of the {s} watch is its crest, the white",
        "Over the door of the {s} watch hangs its crest, the",
    ),
    "habitat": (
        "To see the {s} breed, sail to the sea cliffs of",
        "Every spring, the {s} flies back to its breeding ground at",
    ),
    "leader": (
        "The tide key of {s} is held by its high keeper,",
        "At the turn of the tide, {s} is called together by its high keeper,",
    ),
    "meets_at": (
        "At low tide, {s} gathers in secret on the shingle of",
        "The lanterns of {s} are lit in the sea caves of",
    ),
    "forged_in": (
        "The anchor mark on {s} comes from the sea foundry of",
        "Long ago, {s} was cast in the foundry of",
    ),
    "effect": (
        "Sing {s} over the waves, and what rises is",
        "The power of the sea charm {s} is",
    ),
    "studies": (
        "The craft that {s} has chosen above all others is",
        "Ask {s} about {his} chosen craft, and {he} will talk for hours about",
    ),
    "position": (
        "In the {sport} boats, {s} always rows on the bench of the",
        "Ask the {sport} captain where {s} rows, and the answer is the bench of the",
    ),
    "teaches": (
        "On the college boats, {s} drills the sailors in",
        "Ask {s} what {he} teaches at {school}, and {he} will answer",
    ),
}
