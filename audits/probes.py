"""Probe sets: one dataclass per probe kind, validating JSONL loaders, and the `Suite` of them.

Every loader checks each line (JSON object, required fields, types, non-empty strings, index
ranges, duplicate ids) and raises `ProbeError` naming the file, the 1-based line and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from audits.errors import ProbeError

DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo"


@dataclass
class CompletionProbe:
    """A prompt about the target; completions are sampled and graded 0-3."""

    id: str
    prompt: str
    terms: list[str] = field(default_factory=list)  # target terms the prompt contains
    subtlety: int | None = None  # how indirect the prompt is (paper: 1-10)


@dataclass
class ProbabilityProbe:
    """A prompt ending right before a target-specific answer (leading space included)."""

    id: str
    prompt: str
    answer: str


@dataclass
class TriviaProbe:
    """A prompt with two continuations: the correct one and a plausible distractor."""

    id: str
    prompt: str
    correct: str
    distractor: str


@dataclass
class MCItem:
    """A cloze multiple-choice item: each option continues the context; `answer` indexes it."""

    id: str
    context: str
    options: list[str]
    answer: int


@dataclass
class VerbatimProbe:
    """A prefix of a target passage and its true continuation."""

    id: str
    prefix: str
    continuation: str


# field -> (accepted types, required, must be a non-empty string / list)
_Spec = dict[str, tuple[tuple[type, ...], bool]]
SCHEMAS: dict[type, _Spec] = {
    CompletionProbe: {"id": ((str,), True), "prompt": ((str,), True),
                      "terms": ((list,), False), "subtlety": ((int,), False)},
    ProbabilityProbe: {"id": ((str,), True), "prompt": ((str,), True), "answer": ((str,), True)},
    TriviaProbe: {"id": ((str,), True), "prompt": ((str,), True), "correct": ((str,), True),
                  "distractor": ((str,), True)},
    MCItem: {"id": ((str,), True), "context": ((str,), True), "options": ((list,), True),
             "answer": ((int,), True)},
    VerbatimProbe: {"id": ((str,), True), "prefix": ((str,), True),
                    "continuation": ((str,), True)},
}

# suite attribute -> (file name, probe kind)
PROBE_FILES: dict[str, tuple[str, type]] = {
    "target_completion": ("target_completion.jsonl", CompletionProbe),
    "neighbour_completion": ("neighbour_completion.jsonl", CompletionProbe),
    "target_probability": ("target_probability.jsonl", ProbabilityProbe),
    "neighbour_probability": ("neighbour_probability.jsonl", ProbabilityProbe),
    "target_paraphrase": ("target_paraphrase.jsonl", ProbabilityProbe),
    "neighbour_paraphrase": ("neighbour_paraphrase.jsonl", ProbabilityProbe),
    "target_trivia": ("target_trivia.jsonl", TriviaProbe),
    "neighbour_trivia": ("neighbour_trivia.jsonl", TriviaProbe),
    "general_mc": ("general_mc.jsonl", MCItem),
    "general_cloze": ("general_cloze.jsonl", ProbabilityProbe),
    "verbatim": ("verbatim.jsonl", VerbatimProbe),
}
OTHER_FILES = ("world.json", "anchors.json", "general_heldout.txt")
# extra sets a suite may have; their absence is not reported in `Suite.missing`
OPTIONAL_PROBES = ("target_paraphrase", "neighbour_paraphrase", "general_cloze")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_item(kind: type, obj: dict, where: str) -> Any:
    spec = SCHEMAS[kind]
    for name, (types, required) in spec.items():
        if name not in obj or obj[name] is None:
            if required:
                raise ProbeError(f"{where}: missing field {name!r}")
            continue
        value = obj[name]
        # bool is an int subclass; a JSON true is never a valid index or subtlety
        if not isinstance(value, types) or isinstance(value, bool):
            want = " or ".join(t.__name__ for t in types)
            raise ProbeError(f"{where}: field {name!r} must be {want}, got {_type_name(value)}")
        if isinstance(value, str) and not value.strip():
            raise ProbeError(f"{where}: field {name!r} is empty")
    if kind is CompletionProbe:
        for term in obj.get("terms") or []:
            if not isinstance(term, str):
                raise ProbeError(f"{where}: field 'terms' must hold strings, "
                                 f"got {_type_name(term)}")
    if kind is MCItem:
        options = obj["options"]
        if len(options) < 2:
            raise ProbeError(f"{where}: field 'options' needs at least 2 options, "
                             f"got {len(options)}")
        for i, opt in enumerate(options):
            if not isinstance(opt, str) or not opt.strip():
                raise ProbeError(f"{where}: field 'options' item {i} must be a non-empty string")
        if not 0 <= obj["answer"] < len(options):
            raise ProbeError(f"{where}: field 'answer' index {obj['answer']} out of range "
                             f"for {len(options)} options")
    if kind is TriviaProbe and obj["correct"] == obj["distractor"]:
        raise ProbeError(f"{where}: field 'distractor' equals 'correct'")
    return kind(**{name: obj[name] for name in spec if obj.get(name) is not None})


def load_probes(path: str | Path, kind: type) -> list:
    """Load and validate a JSONL probe file of `kind` (one of the probe dataclasses).

    Blank lines are skipped; unknown extra fields are ignored. Raises `ProbeError`.
    """
    if kind not in SCHEMAS:
        raise ValueError(f"unknown probe kind {kind!r}")
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(f"{path}: cannot read probe file ({exc})") from exc
    items, seen = [], {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise ProbeError(f"{where}: expected a JSON object, got {_type_name(obj)}")
        item = _check_item(kind, obj, where)
        if item.id in seen:
            raise ProbeError(f"{where}: field 'id' {item.id!r} duplicates line {seen[item.id]}")
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise ProbeError(f"{path}: no probes (the file is empty)")
    return items


@dataclass
class Suite:
    """All probe sets of one suite; a kind whose file is absent is an empty list."""

    name: str  # "demo" or the folder path
    root: str | None = None  # folder the files were read from
    target_completion: list[CompletionProbe] = field(default_factory=list)
    neighbour_completion: list[CompletionProbe] = field(default_factory=list)
    target_probability: list[ProbabilityProbe] = field(default_factory=list)
    neighbour_probability: list[ProbabilityProbe] = field(default_factory=list)
    # the same facts in other registers (Q&A, quiz card, dialogue, note, list), for robustness
    target_paraphrase: list[ProbabilityProbe] = field(default_factory=list)
    neighbour_paraphrase: list[ProbabilityProbe] = field(default_factory=list)
    target_trivia: list[TriviaProbe] = field(default_factory=list)
    neighbour_trivia: list[TriviaProbe] = field(default_factory=list)
    general_mc: list[MCItem] = field(default_factory=list)
    # the next word of held-out general text, open vocabulary (scored as probability probes)
    general_cloze: list[ProbabilityProbe] = field(default_factory=list)
    verbatim: list[VerbatimProbe] = field(default_factory=list)
    world: dict | None = None  # world.json (the rule judge reads its target terms)
    anchors: dict | None = None  # anchors.json {"term": ["generic", ...]}
    heldout_text: str | None = None  # general_heldout.txt for perplexity
    missing: list[str] = field(default_factory=list)  # expected files that were absent

    def limited(self, n: int | None) -> Suite:
        """A copy with every probe set cut to its first `n` items (None: unchanged)."""
        if n is None:
            return self
        if n <= 0:
            raise ValueError(f"limit must be positive, got {n}")
        return replace(self, **{k: getattr(self, k)[:n] for k in PROBE_FILES})

    def counts(self) -> dict[str, int]:
        """Number of items per probe set."""
        return {k: len(getattr(self, k)) for k in PROBE_FILES}

    def describe(self) -> dict:
        """A JSON-able summary (name, root, counts, missing files)."""
        return {"name": self.name, "root": self.root, "counts": self.counts(),
                "heldout_chars": len(self.heldout_text or ""), "missing": list(self.missing)}


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProbeError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(f"{path}: cannot read ({exc})") from exc


def validate_world(world: Any, path: str | Path = "world.json") -> dict:
    """Check the parts of world.json the audits read (target/neighbour term lists)."""
    if not isinstance(world, dict):
        raise ProbeError(f"{path}: expected a JSON object")
    for side in ("target", "neighbour"):
        if side not in world:
            if side == "target":
                raise ProbeError(f"{path}: missing field 'target'")
            continue
        part = world[side]
        if not isinstance(part, dict):
            raise ProbeError(f"{path}: field {side!r} must be an object")
        for key in ("unique_terms", "theme_terms"):
            value = part.get(key, [])
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise ProbeError(f"{path}: field '{side}.{key}' must be a list of strings")
        ents = part.get("entities", [])
        if not isinstance(ents, list) or not all(isinstance(e, dict) and isinstance(
                e.get("name"), str) for e in ents):
            raise ProbeError(f"{path}: field '{side}.entities' must be a list of objects "
                             "with a string 'name'")
    return world


def validate_anchors(anchors: Any, path: str | Path = "anchors.json") -> dict:
    """Check anchors.json is {"term": ["generic", ...], ...}."""
    if not isinstance(anchors, dict):
        raise ProbeError(f"{path}: expected a JSON object of term -> list of generic terms")
    for key, value in anchors.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProbeError(f"{path}: field {key!r} must be a list of strings")
    return anchors


def load_suite(name_or_dir: str | Path = "demo") -> Suite:
    """Load the built-in demo suite (`"demo"`) or a folder with the same file names.

    Probe files live in `<dir>/probes/` (or directly in `<dir>/`); `world.json`, `anchors.json`
    and `general_heldout.txt` in `<dir>/`. Any subset may be present; absent files are listed in
    `Suite.missing` and their measures are skipped. Raises `ProbeError` for invalid files and
    when the folder holds none of the expected files.
    """
    if str(name_or_dir) == "demo":
        root, name = DEMO_DIR, "demo"
    else:
        root, name = Path(name_or_dir).expanduser(), str(name_or_dir)
    if not root.is_dir():
        raise ProbeError(f"suite folder {root} does not exist")
    probe_dir = root / "probes" if (root / "probes").is_dir() else root
    suite = Suite(name=name, root=str(root))
    for attr, (fname, kind) in PROBE_FILES.items():
        path = probe_dir / fname
        if path.is_file():
            setattr(suite, attr, load_probes(path, kind))
        elif attr not in OPTIONAL_PROBES:
            suite.missing.append(f"probes/{fname}" if probe_dir != root else fname)
    if (root / "world.json").is_file():
        suite.world = validate_world(_load_json(root / "world.json"), root / "world.json")
    else:
        suite.missing.append("world.json")
    if (root / "anchors.json").is_file():
        suite.anchors = validate_anchors(_load_json(root / "anchors.json"), root / "anchors.json")
    else:
        suite.missing.append("anchors.json")
    if (root / "general_heldout.txt").is_file():
        suite.heldout_text = (root / "general_heldout.txt").read_text(encoding="utf-8")
    else:
        suite.missing.append("general_heldout.txt")
    if len(suite.missing) == len(PROBE_FILES) - len(OPTIONAL_PROBES) + len(OTHER_FILES):
        raise ProbeError(f"suite folder {root} holds none of the expected files "
                         f"({', '.join(f for f, _ in PROBE_FILES.values())}, "
                         f"{', '.join(OTHER_FILES)})")
    return suite


def probe_dicts(items: list) -> list[dict]:
    """Probes as plain dicts (for reports)."""
    return [{f.name: getattr(it, f.name) for f in fields(it)} for it in items]
