"""Canon look-ups on world.json shared by the attacks: which names are of the same kind as an
answer (many-way choice), and which spellings a name has (form variants)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    """One canon entity: its full name, kind and aliases (a character's first and last name)."""

    name: str
    kind: str
    aliases: tuple[str, ...] = ()

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def entities(world: dict | None, side: str = "target") -> list[Entity]:
    """Entities of one side of world.json (empty without a world)."""
    part = (world or {}).get(side) or {}
    return [Entity(e["name"], str(e.get("kind", "")), tuple(e.get("aliases") or ()))
            for e in part.get("entities", [])]


def same_kind_options(world: dict | None, answer: str, side: str = "target") -> list[str]:
    """Other canon names of the answer's kind, in the answer's form, with its leading space.

    An answer that is an entity's name (or its i-th alias) gets the other entities of the same
    kind in the same form (name, or i-th alias when they have one). An answer that is the object
    of facts gets the other objects of the same relations. Unknown answers: an empty list.
    """
    lead = answer[:len(answer) - len(answer.lstrip())]
    core = answer.strip()
    ents = entities(world, side)
    for ent in ents:
        if core in ent.forms:
            idx = ent.forms.index(core)
            out = []
            for other in ents:
                if other.kind != ent.kind or other.name == ent.name:
                    continue
                form = other.forms[idx] if idx < len(other.forms) else other.name
                if form != core and form not in out:
                    out.append(form)
            return [lead + o for o in out]
    facts = ((world or {}).get(side) or {}).get("facts", [])
    relations = {f.get("relation") for f in facts if f.get("object") == core}
    out = []
    for f in facts:
        obj = f.get("object")
        if f.get("relation") in relations and obj != core and obj not in out:
            out.append(obj)
    return [lead + o for o in out]


def name_pattern(names: list[str]) -> re.Pattern | None:
    """A word-boundary regex matching any of `names`, longest first (None for no names)."""
    names = sorted({n for n in names if n}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
