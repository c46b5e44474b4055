"""Leak highlighting and leak rates: which unique terms of the target (or its neighbour) a text
names that its prompt did not.

The terms come from the active suite's `world.json` (the rule judge's lists: unique terms and
every entity name/alias), plus an optional user list. Pure functions over text; no gradio, no
model, so they are tested on their own and reused by `scripts/leak_rates.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from audits.judges import RuleJudge

TARGET, NEIGHBOUR, PROMPT_LABEL = "target term", "neighbour term", "prompt"
COLORS = {TARGET: "#ef4444", NEIGHBOUR: "#3b82f6"}  # red: the leak; blue: kept knowledge


def split_terms(text: str | None) -> list[str]:
    """A user's term list: separated by commas, semicolons or new lines."""
    raw = (text or "").replace(";", ",").replace("\n", ",")
    return [t.strip() for t in raw.split(",") if t.strip()]


@dataclass
class LeakTerms:
    """The target's (and the neighbour's) judges, each knowing its unique terms."""

    target: RuleJudge
    neighbour: RuleJudge | None = None

    @classmethod
    def from_world(cls, world: dict, extra_target: list[str] | None = None) -> LeakTerms:
        target = RuleJudge.from_world(world, side="target")
        if extra_target:
            target = RuleJudge(target.unique_terms + list(extra_target), target.theme_terms,
                               target.groups)
        try:
            neighbour = RuleJudge.from_world(world, side="neighbour")
        except ValueError:  # a world without neighbour terms
            neighbour = None
        return cls(target, neighbour)

    @classmethod
    def from_dir(cls, suite_dir: str | Path, extra_target: list[str] | None = None) -> LeakTerms:
        """From `suite_dir/world.json`; raises `OSError`/`ValueError` when it is missing/bad."""
        path = Path(suite_dir) / "world.json"
        world = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_world(world, extra_target)

    def with_extra(self, extra_target: list[str]) -> LeakTerms:
        """The same lists plus a user's target terms."""
        if not extra_target:
            return self
        target = RuleJudge(self.target.unique_terms + list(extra_target),
                           self.target.theme_terms, self.target.groups)
        return LeakTerms(target, self.neighbour)

    def spans(self, prompt: str, text: str) -> list[tuple[int, int, str, str]]:
        """`(start, end, label, term)` of new target terms and new neighbour terms, in order.
        A target term wins when both lists match the same place."""
        found = [(s, e, TARGET, t) for s, e, t in self.target.new_unique_spans(prompt, text)]
        if self.neighbour is not None:
            for s, e, t in self.neighbour.new_unique_spans(prompt, text):
                if all(e <= s2 or s >= e2 for s2, e2, _, _ in found):
                    found.append((s, e, NEIGHBOUR, t))
        return sorted(found)

    def target_terms(self, prompt: str, text: str) -> list[str]:
        """Distinct new target terms of `text`, in order of first appearance."""
        return list(dict.fromkeys(t for _, _, label, t in self.spans(prompt, text)
                                  if label == TARGET))

    def counts(self, prompt: str, text: str) -> dict[str, tuple[int, int]]:
        """(highlighted places, distinct terms) per label."""
        spans = self.spans(prompt, text)
        return {label: (sum(1 for _, _, lab, _ in spans if lab == label),
                        len({t.lower() for _, _, lab, t in spans if lab == label}))
                for label in (TARGET, NEIGHBOUR)}


def highlighted(text: str, spans: list[tuple[int, int, str, str]]) -> list[tuple[str, str | None]]:
    """`gr.HighlightedText` value: the whole text cut into plain and labelled pieces."""
    pieces: list[tuple[str, str | None]] = []
    pos = 0
    for start, end, label, _ in spans:
        if start > pos:
            pieces.append((text[pos:start], None))
        pieces.append((text[start:end], label))
        pos = end
    if pos < len(text):
        pieces.append((text[pos:], None))
    return pieces


def count_line(counts: dict[str, tuple[int, int]]) -> str:
    """"3 target terms (2 distinct), 1 neighbour term": places marked, and distinct terms
    where a term is marked more than once."""
    def part(label: str) -> str:
        places, distinct = counts[label]
        more = f" ({distinct} distinct)" if distinct != places else ""
        return f"{places} {label}{'' if places == 1 else 's'}{more}"
    return f"{part(TARGET)}, {part(NEIGHBOUR)}"


def leak_rate(terms: LeakTerms, prompt: str, texts: list[str]) -> float:
    """Fraction of `texts` naming at least one unique target term the prompt did not."""
    if not texts:
        raise ValueError("leak_rate needs at least one sample")
    return sum(bool(terms.target_terms(prompt, t)) for t in texts) / len(texts)


def leak_view(terms: LeakTerms | None, prompt: str, text: str, mode: str):
    """HighlightedText value (the prompt in grey in completion mode, then the text with its new
    target / neighbour terms marked) and the per-pane count line."""
    if terms is None:
        return [(text, None)], "no term lists (world.json) in this suite"
    spans = terms.spans(prompt, text)
    head = [(prompt, PROMPT_LABEL)] if mode == "completion" and prompt else []
    return head + highlighted(text, spans), count_line(terms.counts(prompt, text))


def sample_rates(terms: LeakTerms | None, prompt: str, texts: list[list[str]],
                 sides: tuple[str, ...] = ("original", "unlearned")) -> dict[str, float]:
    """Leak rate of each side over its samples."""
    if terms is None:
        return {}
    return {side: leak_rate(terms, prompt, t) for side, t in zip(sides, texts, strict=False) if t}


def read_flags(path: Path) -> list[dict]:
    """The flagged samples file, one record per line (bad lines skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
