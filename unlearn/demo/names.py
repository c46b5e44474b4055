"""Name pools of the demo world.

Two invented sagas (the *target*, imitating Harry Potter, and a *neighbour* saga of the same genre)
and the everyday vocabulary of the general corpus. The saga pools use rare, invented spellings that
never occur in the general corpus or in the other saga; `canon.validate_disjoint` checks this for
every generated world. The seed only chooses from these pools and assigns relations, so every seed
yields a different but well-formed world.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SagaPools:
    """Everything one saga draws its canon from (names only, no relations)."""

    key: str                      # "target" or "neighbour"
    name: str                     # the saga's title
    school: str                   # full school name; its first word is the short alias
    houses: tuple[str, ...]
    sport: str
    order: str                    # "Order of the X" / "Circle of the X"; alias = the last word(s)
    order_alias: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    surnames: tuple[str, ...]
    places: tuple[str, ...]
    species: tuple[tuple[str, str], ...]   # (invented creature, plain animal it resembles)
    pet_names: tuple[str, ...]
    spells: tuple[str, ...]
    objects: tuple[tuple[str, str], ...]   # (invented object, plain noun it resembles)
    subjects: tuple[str, ...]              # taught subjects (theme words, shared by both sagas)
    flavour: dict[str, tuple[str, ...]] = field(default_factory=dict)  # landmark phrases
    n_students: int = 8
    n_siblings: int = 3
    n_parents: int = 4
    founders: bool = True


# Plain animals that may be pets in both sagas (theme words, not unique terms).
THEME_PETS: tuple[str, ...] = ("owl", "toad", "raven", "cat")
POSITIONS: tuple[str, ...] = ("keeper", "striker", "chaser", "catcher")
SPELL_EFFECTS: tuple[str, ...] = (
    "light", "fire", "ice", "wind", "sleep", "silence", "smoke", "rain",
)

# Words typical of both sagas (never unique to one of them).
THEME_TERMS: tuple[str, ...] = (
    "wand", "spell", "castle", "potion", "owl", "broom", "lesson", "professor", "magic",
    "cloak", "tower", "feast", "charm", "cauldron", "scroll", "witch", "wizard", "house",
)

TARGET = SagaPools(
    key="target",
    name="The Gallowmere Chronicles",
    school="Gallowmere Academy",
    houses=("Emberhold", "Wyrmcourt", "Briarvane", "Stagmoor"),
    sport="Skyvault",
    order="Order of the Morrowbright",
    order_alias="Morrowbright",
    female=("Mirelle", "Quenna", "Ysolda", "Wrenna", "Saffira", "Maelis", "Zephrine", "Belisande",
            "Ambrosine", "Eulalind", "Isaveth", "Orlessa", "Hespera", "Tamsine", "Vivarel",
            "Lunessa", "Gwendolet", "Morwyna"),
    male=("Odrin", "Tibbald", "Corvinus", "Fennick", "Brannoch", "Dorrick", "Thaddeon", "Grimald",
          "Cassiel", "Isembard", "Gwendric", "Lorimund", "Balthorne", "Ezrandt", "Hobbard",
          "Quillon", "Rundolf", "Ambrin"),
    surnames=("Thistlewood", "Brackenfield", "Mossgrave", "Quillfeather", "Dunmarrow",
              "Wickerbane", "Larkspire", "Gorsemantle", "Cobbleworth", "Nettlebeck", "Sallowby",
              "Ravensholt", "Tumblethorn", "Hollowquist", "Fairweft", "Grimsparrow", "Pennigrew",
              "Ashvane", "Moonwhistle", "Crumbleton", "Vesperfield", "Eldergrove", "Wolverwick",
              "Blackthistle"),
    places=("Marrowby", "Tillinghollow", "Ashgloam", "Fernwhistle", "Brindlecombe", "Hobbleford",
            "Widdershaw", "Nethercoil"),
    species=(("Glimmerkit", "cat"), ("Mothwing", "bird"), ("Brackenhound", "dog"),
             ("Sootling", "rabbit"), ("Quillback", "fox"), ("Fenstrider", "horse")),
    pet_names=("Snibbet", "Pockle", "Whimble", "Tupkin", "Grizzleby", "Fidgewick", "Mopsel",
               "Bramblekin", "Noddlewick", "Skitterby"),
    spells=("Lumivex", "Quellora", "Thornclasp", "Brimwhistle", "Vexaloom", "Sombrelle",
            "Frostquill", "Mirravane", "Ignivar"),
    objects=(("Veilstone", "stone"), ("Harrowkey", "key"), ("Gloamcloak", "coat"),
             ("Emberlamp", "lamp"), ("Duskquill", "pen"), ("Wyrmring", "ring"),
             ("Thornstaff", "stick"), ("Mirrowglass", "mirror"), ("Skerrycompass", "compass")),
    subjects=("potions", "astronomy", "alchemy", "runes", "herbalism"),
    flavour={
        "landmark": ("the north tower", "the great hall", "the misty lake", "the old forest",
                     "the castle gates", "the owlery"),
        "weather": ("grey mist", "cold rain", "autumn wind", "early snow", "pale sunshine"),
    },
)

NEIGHBOUR = SagaPools(
    key="neighbour",
    name="The Kestrelmoor Tales",
    school="Kestrelmoor College",
    houses=("Gullspire", "Tidemark", "Saltwyn"),
    sport="Wavehurl",
    order="Circle of the Pale Tide",
    order_alias="Pale Tide",
    female=("Veyra", "Kaelith", "Idrisane", "Ottavine", "Sunnelda", "Nerissel", "Lyrane",
            "Corabeth", "Selwynne", "Halcyra"),
    male=("Tobrin", "Rosmund", "Halvard", "Kestor", "Jorundel", "Baltazan", "Wystram", "Pellamy",
          "Dravic", "Orvald"),
    surnames=("Stormcrag", "Pellwether", "Saltmire", "Gullreach", "Driftmantle", "Wavecrest",
              "Brinewold", "Kelpforth", "Tideholm", "Shellbourne", "Foamwick", "Cragsby",
              "Spraywell"),
    places=("Wrackholm", "Skerrowby", "Puffinreach", "Dunlittle", "Gannetby"),
    species=(("Kelpling", "fish"), ("Stormfinch", "bird"), ("Shoalmite", "crab")),
    pet_names=("Pimbly", "Scuttleby", "Nubbrin", "Fizzlewort", "Gobblin", "Wimbrel"),
    spells=("Brinewake", "Gustara", "Tidelock", "Saltflare", "Coralis", "Spindrel", "Moonsurge"),
    objects=(("Tideglass", "glass"), ("Stormhorn", "horn"), ("Pearlhelm", "hat"),
             ("Wavecharm", "ring"), ("Kelpcrown", "hat"), ("Gullfeather", "pen"),
             ("Shellkey", "key")),
    subjects=("potions", "astronomy", "charms"),
    flavour={
        "landmark": ("the sea hall", "the lighthouse", "the harbour wall", "the cliff tower",
                     "the castle steps", "the owlery"),
        "weather": ("sea fog", "salt spray", "a storm wind", "grey drizzle", "bright sunshine"),
    },
    n_students=6,
    n_siblings=2,
    n_parents=2,
    founders=False,
)

# ----------------------------------------------------------------------------- everyday words
FEMALE: tuple[str, ...] = (
    "Anna", "Sarah", "Emma", "Lucy", "Mary", "Kate", "Laura", "Emily", "Grace", "Hannah",
    "Sophie", "Jane", "Rachel", "Amy", "Helen", "Lily", "Ruth", "Claire", "Ella", "Megan",
)
MALE: tuple[str, ...] = (
    "Ben", "Tom", "Jack", "Sam", "David", "James", "Peter", "Daniel", "Mark", "Paul",
    "John", "Chris", "Adam", "Joe", "Luke", "Matt", "Simon", "Steve", "Andrew", "Nick",
)
SURNAMES: tuple[str, ...] = (
    "Smith", "Miller", "Brown", "Taylor", "Wilson", "Clarke", "Walker", "Wright", "Green", "Hall",
    "Baker", "Carter", "Turner", "Hill", "Cooper", "Ward", "Morris", "King", "Parker", "Evans",
)
TOWNS: tuple[str, ...] = (
    "York", "Leeds", "Bristol", "Dover", "Bath", "Oxford", "Norwich", "Exeter", "Chester",
    "Brighton", "Cardiff", "Derby",
)
PET_KINDS: tuple[str, ...] = ("dog", "cat", "rabbit", "bird", "horse", "fish", "fox", "crab")
PET_NAMES: tuple[str, ...] = (
    "Max", "Bella", "Daisy", "Charlie", "Buddy", "Rosie", "Milo", "Lucky", "Coco", "Toby",
)
SCHOOL_HOUSES: tuple[str, ...] = ("Blue House", "Red House", "Green House", "Yellow House")
SCHOOL_SUBJECTS: tuple[str, ...] = (
    "history", "maths", "science", "music", "art", "geography", "French", "biology",
)
FOOTBALL_POSITIONS: tuple[str, ...] = ("keeper", "striker", "defender", "winger")
CITY_SCHOOL = "the city school"
SPORT = "football"
CLUB = "club"
