"""Anchored-term dictionary: load/save (JSON, CSV), validation, redundant filter, per-block choice.

A dictionary maps idiosyncratic expressions of the target text ("Hogwarts") to one or more generic
counterparts ("Mystic Academy"). See docs/WHP.md section 3.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from unlearn.runtime import write_text

__all__ = [
    "AnchorDictionary", "AnchorError", "AnchorIssue", "load_anchors", "save_anchors",
    "validate_anchors", "filter_redundant", "choose_translations", "normalize_key",
]

# Suffixes that make a possessive or inflected form of a key ("Harry's", "Potters", "Potters'").
# Longest first so that "s'" wins over "'".
INFLECTION_SUFFIXES: tuple[str, ...] = ("'s", "\u2019s", "s'", "s\u2019", "es", "s", "'", "\u2019")
CSV_SEPARATOR = "|"  # several translations in one CSV cell: "Jon|Mark"


class AnchorError(ValueError):
    """The dictionary (or its file) is unusable; `issues` lists every problem found."""

    def __init__(self, message: str, issues: list[AnchorIssue] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


@dataclass(frozen=True)
class AnchorIssue:
    """One problem with one key of the dictionary."""

    key: str
    message: str
    severity: str = "error"  # "error" (unusable) or "warning" (works, but worth a look)

    def __str__(self) -> str:
        return f"{self.severity}: {self.key!r}: {self.message}"


@dataclass
class AnchorDictionary:
    """Anchored terms: each key maps to its candidate translations (one is drawn per block)."""

    entries: dict[str, list[str]] = field(default_factory=dict)  # key -> translations

    def __post_init__(self) -> None:
        clean: dict[str, list[str]] = {}
        for key, value in dict(self.entries).items():
            values = [value] if isinstance(value, str) else list(value)
            if not isinstance(key, str) or not all(isinstance(v, str) for v in values):
                raise AnchorError(f"keys and translations must be strings (key {key!r})")
            clean[key] = list(dict.fromkeys(values))  # drop exact repeats, keep order
        self.entries = clean

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self) -> list[str]:
        return list(self.entries)

    def translations(self) -> list[str]:
        """Every distinct translation, in dictionary order."""
        return list(dict.fromkeys(t for values in self.entries.values() for t in values))

    def check(self) -> AnchorDictionary:
        """Raise `AnchorError` listing all errors (warnings are ignored); return self when clean."""
        errors = [i for i in validate_anchors(self) if i.severity == "error"]
        if errors:
            lines = "\n".join(f"  - {e}" for e in errors)
            raise AnchorError(f"{len(errors)} error(s) in the anchored-term dictionary:\n{lines}",
                              errors)
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, str | Iterable[str]]) -> AnchorDictionary:
        return cls({k: ([v] if isinstance(v, str) else list(v)) for k, v in data.items()})


def normalize_key(key: str) -> str:
    """Case- and whitespace-insensitive form used to detect near-duplicate keys."""
    return " ".join(key.split()).casefold()


# ----------------------------------------------------------------------------- files

def _merge(pairs: Iterable[tuple[str, str | list[str]]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise AnchorError(f"key {key!r} is not a string")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise AnchorError(f"translations of {key!r} must be a string or a list of strings, "
                              f"got {value!r}")
        merged.setdefault(key, []).extend(values)
    return merged


def load_anchors(path: str | os.PathLike) -> AnchorDictionary:
    """Read a dictionary from `.json` (`{"Key": ["t1", "t2"]}` or `{"Key": "t"}`) or `.csv`.

    CSV: columns `key,translation` (a header row with these names is optional); a key may have
    several rows, or several translations in one cell separated by "|". Keys and translations are
    stripped of surrounding whitespace in CSV (cells), kept verbatim in JSON (validation warns).
    Raises `AnchorError` for an unreadable or malformed file; run `validate_anchors` for content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AnchorError(f"cannot read anchored-term dictionary {str(path)!r}: {exc}") from exc
    if suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: pairs)
        except json.JSONDecodeError as exc:
            raise AnchorError(f"{path}: invalid JSON: {exc}") from exc
        if not isinstance(data, list) or (data and not isinstance(data[0], tuple)):
            raise AnchorError(f"{path}: expected a JSON object {{\"Key\": [\"translation\", ...]}}")
        return AnchorDictionary(_merge(data))
    if suffix == ".csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["key", "translation"]:
            rows = rows[1:]
        pairs: list[tuple[str, list[str]]] = []
        for lineno, row in enumerate(rows, 1):
            if len(row) < 2:
                raise AnchorError(f"{path}: row {lineno} {row!r} needs two columns: "
                                  "key,translation")
            pairs.append((row[0].strip(), [t.strip() for t in row[1].split(CSV_SEPARATOR)]))
        return AnchorDictionary(_merge(pairs))
    raise AnchorError(f"{path}: unsupported dictionary format {suffix!r} (use .json or .csv)")


def save_anchors(anchors: AnchorDictionary, path: str | os.PathLike) -> None:
    """Write `anchors` as `.json` or `.csv` (by suffix); atomic (temp file + rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(anchors.entries, ensure_ascii=False, indent=1) + "\n"
    elif suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["key", "translation"])
        for key, values in anchors.entries.items():
            for value in values:  # one row per translation: "|" inside a value stays unambiguous
                if CSV_SEPARATOR in value:
                    raise AnchorError(f"translation {value!r} of {key!r} contains "
                                      f"{CSV_SEPARATOR!r}; save as .json instead")
                writer.writerow([key, value])
        text = buf.getvalue()
    else:
        raise AnchorError(f"{path}: unsupported dictionary format {suffix!r} (use .json or .csv)")
    write_text(path, text)


# ----------------------------------------------------------------------------- validation

def _key_pattern(keys: Iterable[str]) -> re.Pattern | None:
    """One regex matching any key as a whole word (longest first); None when there are none."""
    keys = sorted({k.strip() for k in keys if k.strip()}, key=len, reverse=True)
    if not keys:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + r")(?!\w)")


def validate_anchors(anchors: AnchorDictionary) -> list[AnchorIssue]:
    """Every problem in the dictionary, errors first.

    Errors: empty key; key without translations; empty translation; translation equal to its key
    (ignoring case); keys that differ only by case/whitespace; a translation containing a key as a
    whole word (it would be re-translated / leak the key). Warnings: surrounding whitespace, a
    translation shared by several keys, keys that `filter_redundant` would drop.
    """
    errors: list[AnchorIssue] = []
    warnings: list[AnchorIssue] = []
    groups: dict[str, list[str]] = {}
    for key, values in anchors.entries.items():
        if not key.strip():
            errors.append(AnchorIssue(key, "empty key"))
            continue
        groups.setdefault(normalize_key(key), []).append(key)
        if key != key.strip() or " ".join(key.split()) != key.strip():
            warnings.append(AnchorIssue(key, "key has surrounding or repeated whitespace",
                                        "warning"))
        if not values:
            errors.append(AnchorIssue(key, "key has no translation"))
        for n, value in enumerate(values, 1):
            if not value.strip():
                errors.append(AnchorIssue(key, f"translation #{n} is empty"))
            elif normalize_key(value) == normalize_key(key):
                errors.append(AnchorIssue(key, f"translation #{n} {value!r} equals the key"))
            elif value != value.strip():
                warnings.append(AnchorIssue(key, f"translation #{n} {value!r} has surrounding "
                                                 "whitespace", "warning"))
    for variants in groups.values():
        if len(variants) > 1:
            for key in variants:
                others = ", ".join(repr(v) for v in variants if v != key)
                errors.append(AnchorIssue(key, f"duplicate key: differs from {others} only by "
                                               "case/whitespace"))
    pattern = _key_pattern(anchors.entries)
    owners: dict[str, list[str]] = {}
    for key, values in anchors.entries.items():
        for n, value in enumerate(values, 1):
            owners.setdefault(value.strip(), []).append(key)
            if pattern is None or not value.strip() or normalize_key(value) == normalize_key(key):
                continue
            found = sorted({m.group(0) for m in pattern.finditer(value)})
            if found:
                which = ", ".join(repr(f) for f in found)
                errors.append(AnchorIssue(key, f"translation #{n} {value!r} contains the key(s) "
                                               f"{which}: the generic text would keep the term"))
    for value, keys in owners.items():
        if value and len(keys) > 1:  # one warning per shared translation, on its first key
            warnings.append(AnchorIssue(keys[0], f"translation {value!r} is shared with "
                                                 f"{keys[1:]}", "warning"))
    _, dropped = filter_redundant(anchors)
    for key in dropped:
        warnings.append(AnchorIssue(key, "redundant: covered by shorter keys "
                                         "(filter_redundant drops it)", "warning"))
    return errors + warnings


# ----------------------------------------------------------------------------- filtering

def _base_forms(word: str) -> list[str]:
    """`word` itself and what remains after stripping one possessive/inflection suffix."""
    forms = [word]
    for suffix in INFLECTION_SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            forms.append(word[: -len(suffix)])
    return forms


def filter_redundant(anchors: AnchorDictionary) -> tuple[AnchorDictionary, list[str]]:
    """Drop keys that other keys already cover; return `(filtered, dropped_keys)`.

    A key is redundant when it is a possessive/inflected form of another key ("Harry's",
    "Harrys", "Potters'" when "Harry"/"Potter" exist: token matching translates the base and keeps
    the suffix), or when it has several words and every word (or its base form) is a key
    ("Harry Potter" when "Harry" and "Potter" exist).
    """
    keys = set(anchors.entries)
    dropped: list[str] = []
    for key in anchors.entries:
        stripped = key.strip()
        if any(form != stripped and form in keys for form in _base_forms(stripped)):
            dropped.append(key)
            continue
        words = stripped.split()
        if len(words) > 1 and all(any(f in keys for f in _base_forms(w)) for w in words):
            dropped.append(key)
    kept = {k: list(v) for k, v in anchors.entries.items() if k not in set(dropped)}
    return AnchorDictionary(kept), dropped


def choose_translations(anchors: AnchorDictionary, rng: random.Random) -> dict[str, str]:
    """One translation per key for one block, drawn with `rng`.

    Keys are visited in sorted order, single words first, so the choice depends only on the seed
    and the dictionary content. A multi-word key prefers the candidates that agree with the
    choices of its words that are keys themselves ("Harry" -> "Jon" makes "Harry Potter" pick
    "Jon Smith" over "Mark Brown" when both are listed), so one block names an entity one way.
    """
    choice: dict[str, str] = {}
    order = sorted(anchors.entries, key=lambda k: (len(k.split()) > 1, k))
    for key in order:
        values = anchors.entries[key]
        if not values:
            continue
        if len(key.split()) > 1:
            wanted = [choice[w] for w in key.split() if w in choice]
            agree = [v for v in values
                     if all(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", v) for t in wanted)]
            values = agree or values
        choice[key] = values[0] if len(values) == 1 else rng.choice(values)
    return choice
