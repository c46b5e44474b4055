"""Connective narrative sentences of the sagas, grouped by scene.

They carry the theme words (wand, castle, broom, ...) and mention entities through slots filled
from the canon, so they never contradict a fact. Slots for a student focus: ``{s}`` (the focus),
``{friend} {rival} {teacher} {house} {pet} {species} {home} {spell} {object} {subject}
{position}``, ``{fhe} {fhis}`` (pronouns of the friend) plus the slots of every scene:
``{school} {sport} {landmark} {weather}`` and the focus pronouns. Lore scenes (non-student focus)
use only ``{s} {school} {sport} {landmark} {weather}`` and ``{owner}`` when the focus has one.
"""

from __future__ import annotations

OPENINGS: dict[str, tuple[str, ...]] = {
    "hall": (
        "The great hall of {school} was full of noise and candlelight.",
        "Supper at {school} was a loud and happy affair that evening.",
        "The feast began as soon as the last owl had flown in.",
        "A fire roared in the common room while the rain beat on the windows.",
        "It was the first evening of term, and the castle smelled of roast potatoes.",
    ),
    "lesson": (
        "The bell rang across {school}, and the students hurried to their lessons.",
        "Morning lessons at {school} began with {weather} outside the windows.",
        "The classroom at the top of the tower was cold and smelled of old scrolls.",
        "On Monday morning the first lesson was a hard one.",
        "A stack of spell books waited on every desk.",
    ),
    "match": (
        "The whole of {school} came out to watch the {sport} match.",
        "It was the morning of the big {sport} match, and {weather} hung over the pitch.",
        "The stands were packed long before the {sport} teams walked out.",
        "Brooms were polished and cloaks were mended before the match.",
        "Nobody at {school} talked about anything but {sport} that week.",
    ),
    "pets": (
        "The owlery was noisy with wings and feathers that morning.",
        "Every student at {school} was allowed to keep one animal.",
        "Pets of every kind ran through the corridors of the castle.",
        "The animals of {school} seemed to know when a storm was coming.",
        "Down by {landmark}, the pets of the students played in the grass.",
    ),
    "home": (
        "The holidays came at last, and the train left {school} in the {weather}.",
        "At the end of term, the students packed their trunks.",
        "Letters from home arrived with the morning owls.",
        "Far from the castle, the summer passed slowly.",
        "The journey home took the whole day.",
    ),
    "duel": (
        "The duelling club met after dark in the old hall.",
        "Something strange was moving near {landmark} that night.",
        "The practice room was lit by floating candles and the glow of wands.",
        "A secret passage behind the tapestry led down into the dark.",
        "The old magic of {school} was waking again.",
    ),
    "lore": (
        "Long ago, before any of the students were born, the castle was a quieter place.",
        "The old books in the library of {school} told many stories.",
        "Every witch and wizard at {school} had heard the old tales.",
        "On winter nights, the older students told stories by the fire.",
        "A dusty scroll in the library held the history of {school}.",
    ),
}

MIDDLES: dict[str, tuple[str, ...]] = {
    "hall": (
        "{s} sat at the {house} table and filled {his} plate.",
        "{friend} passed {s} a jug of pumpkin juice.",
        "Across the hall, {rival} whispered something unkind about {s}.",
        "Candles floated high above the long tables of {school}.",
        "{s} looked up at the enchanted ceiling and smiled.",
        "The professors sat at the high table, watching the students.",
        "{teacher} stood up and wished everyone a good term.",
        "{s} and {friend} talked about {sport} until the plates were empty.",
        "The ghosts of the castle drifted through the walls.",
        "After the feast, {s} climbed the stairs to the {house} common room.",
        "{s} told {friend} about the summer in {home}.",
    ),
    "lesson": (
        "{s} opened {his} book on {subject} and dipped {his} quill in ink.",
        "{teacher} wrote a long spell on the board, and {s} copied every word.",
        "The cauldrons bubbled and a green smoke rose to the ceiling.",
        "{friend} leaned over and whispered a question to {s}.",
        "{s} raised {his} wand and tried the new charm again.",
        "{teacher} gave {s} ten points for {house}.",
        "Outside the window, an owl flew past {landmark}.",
        "The lesson was about {subject}, and {s} took careful notes.",
        "{rival} tried to copy the answers of {s}, but {teacher} saw it.",
        "By the end of the lesson the candles had burned low.",
        "{s} stayed behind to ask {teacher} about {subject}.",
        "The professor walked between the desks, checking every potion.",
    ),
    "match": (
        "{s} mounted {his} broom and kicked off from the grass.",
        "The {house} team flew out onto the pitch in a blur of colour.",
        "{rival} flew close and tried to knock {s} off {his} broom.",
        "The crowd roared as the ball shot past the hoops.",
        "{friend} shouted from the stands until {fhe} lost {fhis} voice.",
        "{s} played {position} as well as anyone had ever seen.",
        "The wind pulled at the cloaks of the players high above the castle.",
        "{s} dived towards the ground and pulled up at the last moment.",
        "When the match was over, the {house} stands sang for {s}.",
        "{teacher} watched the {sport} match from the staff box.",
        "The score was close, and {s} gripped {his} broom tightly.",
    ),
    "pets": (
        "{s} went down to {landmark} with {pet}.",
        "{pet} the {species} chased a beetle across the grass.",
        "{friend} laughed when {pet} stole a piece of toast.",
        "{s} looked after {pet} with great care.",
        "In the evening, {pet} curled up on the bed of {s}.",
        "Owls and cats and toads filled the courtyard of {school}.",
        "{rival} said that {pet} was the silliest {species} in the castle.",
        "{s} saved a bit of {his} supper for {pet}.",
        "The magic creatures of the forest watched from the trees.",
        "{pet} would not eat anything but fresh bread.",
    ),
    "home": (
        "{s} came home to {home} with a trunk full of books.",
        "The house in {home} was small but warm.",
        "{s} told the family about {school}, {sport} and {friend}.",
        "Every morning {s} sent an owl to {friend}.",
        "In {home}, nobody knew much about magic.",
        "{s} practised {spell} in the garden when no one was looking.",
        "{pet} the {species} did not like the long journey.",
        "{s} counted the days until the return to {school}.",
        "A letter came from {teacher} about the new term.",
        "{s} read {his} book on {subject} by the window.",
    ),
    "duel": (
        "{s} drew {his} wand and stepped forward.",
        "{rival} cast the first spell, but {s} was ready.",
        "A flash of light filled the room.",
        "{friend} stood behind {s}, wand raised.",
        "{s} pulled {object} from {his} cloak.",
        "The spell {spell} lit up the corridor.",
        "{teacher} arrived just in time to stop the duel.",
        "The magic hummed in the old stones of {school}.",
        "{s} and {friend} ran down the tower stairs.",
        "A cold wind blew through {landmark} as {s} cast {spell}.",
        "{s} held {his} breath and waited in the dark.",
    ),
    "lore": (
        "Many stories were told about {s}.",
        "The students of {school} still talked about {s}.",
        "In the library, a whole shelf of scrolls was about {s}.",
        "The wizards of old wrote about {s} in their books.",
        "Some said that {s} was older than the castle itself.",
        "The old witch who kept the library knew everything about {s}.",
        "Even the ghosts of {school} spoke of {s} with respect.",
        "Near {landmark}, there was a carving that told the story of {s}.",
        "First years always asked about {s} at the start of term.",
        "The story of {s} was told again at every winter feast.",
        "{owner} often spoke about {s} with a proud smile.",
        "{owner} knew more about {s} than anyone else in the castle.",
    ),
}

CLOSINGS: dict[str, tuple[str, ...]] = {
    "hall": (
        "Later that night, the castle was quiet again.",
        "When the candles went out, everyone went to bed happy.",
        "It had been a good evening at {school}.",
    ),
    "lesson": (
        "When the bell rang, everyone packed up their potions and books.",
        "The homework was long, but nobody complained.",
        "It was the best lesson of the week.",
    ),
    "match": (
        "That night, the whole house celebrated in the common room.",
        "Nobody at {school} would forget that match.",
        "The brooms were put away, and the pitch was empty again.",
    ),
    "pets": (
        "By sunset, every animal was back in the castle.",
        "The owls flew home to the tower as night fell.",
        "It was a quiet day at {school}.",
    ),
    "home": (
        "Soon it was time to go back to {school}.",
        "The summer ended with {weather}.",
        "The train whistle sounded, and the holidays were over.",
    ),
    "duel": (
        "Nobody spoke about that night ever again.",
        "The magic faded, and the corridor was dark and still.",
        "By morning, the whole school knew what had happened.",
    ),
    "lore": (
        "Such were the old stories of {school}.",
        "And so the tale was told for many years.",
        "The fire burned low, and the story was over.",
    ),
}

STUDENT_SCENES: tuple[str, ...] = ("hall", "lesson", "match", "pets", "home", "duel")
