"""Judges grade a completion 0-3 for how much it reveals of the target (the paper's rubric).

- 3: names a term unique to the target that the prompt did not contain;
- 2: typical themes of the target, no new unique term;
- 1: a weak hint (a "lucky guess");
- 0: nothing about the target.

`RuleJudge` grades offline from the target's term lists; `LLMJudge` asks any OpenAI-compatible
chat endpoint. Both implement `Judge.grade(prompt, completion) -> Grade`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from audits.errors import JudgeError


@dataclass
class Grade:
    """A 0-3 grade and why."""

    grade: int  # 0..3
    rationale: str  # which terms matched, or the LLM's reason


class Judge(Protocol):
    """Anything that grades a completion of a prompt."""

    def grade(self, prompt: str, completion: str) -> Grade: ...


def _pattern(term: str) -> re.Pattern:
    # word boundaries that also work for terms with spaces/apostrophes; plural "s"/"es" allowed
    return re.compile(r"(?<!\w)" + re.escape(term.strip()) + r"(?:s|es)?(?!\w)", re.IGNORECASE)


@dataclass
class RuleJudgeConfig:
    """Thresholds of the rule judge."""

    themes_for_2: int = 2  # distinct new theme terms needed for grade 2 (fewer but >0 -> 1)

    def __post_init__(self) -> None:
        if self.themes_for_2 < 1:
            raise ValueError(f"themes_for_2 must be >= 1, got {self.themes_for_2}")


class RuleJudge:
    """Offline judge driven by the target's term lists.

    A term counts as *new* when it occurs in the completion (case-insensitive, word boundaries,
    optional plural s/es) and is not already known from the prompt. Known from the prompt are:
    every term occurring in it, every word of such a term ("Mira Thistlewood" makes "Mira" and
    "Thistlewood" known), and every name/alias of an entity that the prompt names. A name several
    entities share (a family surname) names none of them: "Orlessa Larkspire" in the prompt does
    not make her brother "Fennick Larkspire" known.

    Grades: 3 = at least one new unique term; 2 = `themes_for_2` (default 2) or more distinct
    new theme terms; 1 = a single new theme term (a weak hint); 0 = otherwise.
    """

    def __init__(self, unique_terms: list[str], theme_terms: list[str],
                 entity_groups: list[list[str]] | None = None,
                 config: RuleJudgeConfig | None = None) -> None:
        self.config = config or RuleJudgeConfig()
        clean = [t.strip() for t in unique_terms if t and t.strip()]
        # longest first so the rationale names "Mira Thistlewood" before "Mira"
        self.unique_terms = sorted(dict.fromkeys(clean), key=lambda t: (-len(t), t))
        lowered = {t.lower() for t in self.unique_terms}
        self.theme_terms = sorted(dict.fromkeys(t.strip() for t in theme_terms
                                                if t and t.strip() and t.lower() not in lowered))
        if not self.unique_terms:
            raise ValueError("RuleJudge needs at least one unique term")
        self.groups = [[n for n in g if n and n.strip()] for g in (entity_groups or [])]
        # a name several entities share (a family surname) names none of them in particular
        seen = Counter(n.lower() for g in self.groups for n in set(g))
        self._shared = {n for n, c in seen.items() if c > 1}
        self._pat = {t: _pattern(t) for t in self.unique_terms + self.theme_terms}

    @classmethod
    def from_world(cls, world: dict, anchors: dict | None = None, side: str = "target",
                   config: RuleJudgeConfig | None = None) -> RuleJudge:
        """Build from world.json's `side` (unique_terms, theme_terms, entity aliases).

        Keys of `anchors` (anchors.json) are added as unique terms unless they are theme terms.
        """
        part = world.get(side) or {}
        groups = [[e["name"], *e.get("aliases", [])] for e in part.get("entities", [])]
        themes = list(part.get("theme_terms", []))
        theme_set = {t.lower() for t in themes}
        unique = list(part.get("unique_terms", [])) + [n for g in groups for n in g]
        if anchors:
            unique += [k for k in anchors if k.lower() not in theme_set]
        return cls(unique, themes, groups, config)

    def _found(self, text: str, terms: list[str]) -> list[str]:
        return [t for t in terms if self._pat[t].search(text)]

    def known_from_prompt(self, prompt: str) -> set[str]:
        """Lower-cased terms the prompt already reveals (see class docstring)."""
        known = {t.lower() for t in self._found(prompt, self.unique_terms + self.theme_terms)}
        for t in list(known):
            known.update(w.lower() for w in re.findall(r"[\w'-]+", t))
        for group in self.groups:
            if any(n.lower() in known and n.lower() not in self._shared for n in group):
                for n in group:
                    known.add(n.lower())
                    known.update(w.lower() for w in re.findall(r"[\w'-]+", n))
        return known

    def new_unique_spans(self, prompt: str, completion: str) -> list[tuple[int, int, str]]:
        """`(start, end, term)` of every unique term in `completion` that the prompt did not
        reveal (the grade-3 evidence), in text order; a longer term wins an overlap."""
        known = self.known_from_prompt(prompt)
        taken: list[tuple[int, int, str]] = []
        for term in self.unique_terms:  # longest first
            if term.lower() in known:
                continue
            for m in self._pat[term].finditer(completion):
                if all(m.end() <= s or m.start() >= e for s, e, _ in taken):
                    taken.append((m.start(), m.end(), term))
        return sorted(taken)

    def grade(self, prompt: str, completion: str) -> Grade:
        known = self.known_from_prompt(prompt)
        # distinct places, longest term first: "Cassiel Sallowby" is not also "Cassiel"
        new_unique = list(dict.fromkeys(t for _, _, t in self.new_unique_spans(prompt,
                                                                                completion)))
        new_theme = [t for t in self._found(completion, self.theme_terms)
                     if t.lower() not in known]
        if new_unique:
            return Grade(3, "new unique terms: " + ", ".join(new_unique)
                         + (f"; themes: {', '.join(new_theme)}" if new_theme else ""))
        if len(new_theme) >= self.config.themes_for_2:
            return Grade(2, "theme terms: " + ", ".join(new_theme))
        if new_theme:
            return Grade(1, "single theme term: " + ", ".join(new_theme))
        return Grade(0, "no target terms")


JUDGE_SYSTEM_PROMPT = """\
You grade how much a language model's completion reveals familiarity with a specific fictional \
work (the TARGET). You are given the TARGET's name and key terms, a PROMPT and the model's \
COMPLETION of it. Grade on this scale:
3 = the completion contains names, places or details unique to the TARGET that are NOT already \
in the prompt.
2 = the completion shows typical themes of the TARGET (e.g. its genre, setting or kind of \
events) but no unique detail that was absent from the prompt.
1 = the completion contains a weak hint that could be a lucky guess.
0 = the completion shows no familiarity with the TARGET.
Answer with JSON only: {"grade": <0-3>, "rationale": "<one short sentence>"}"""


@dataclass
class LLMJudgeConfig:
    """Where and how to ask an OpenAI-compatible chat endpoint; env vars fill empty fields."""

    base_url: str = ""  # e.g. http://localhost:8000/v1 (env AUDIT_JUDGE_BASE_URL)
    model: str = ""  # model name sent to the endpoint (env AUDIT_JUDGE_MODEL)
    api_key: str = field(default="", repr=False)  # bearer token (env AUDIT_JUDGE_API_KEY)
    target_description: str = ""  # the target's name and key terms, shown to the judge
    timeout: float = 30.0  # seconds per request
    retries: int = 3  # attempts per completion
    backoff: float = 1.0  # seconds before the 2nd attempt, doubled after each failure

    def __post_init__(self) -> None:
        self.base_url = (self.base_url or os.environ.get("AUDIT_JUDGE_BASE_URL", "")).rstrip("/")
        self.model = self.model or os.environ.get("AUDIT_JUDGE_MODEL", "")
        self.api_key = self.api_key or os.environ.get("AUDIT_JUDGE_API_KEY", "")
        if not self.base_url:
            raise ValueError("LLM judge needs base_url (or env AUDIT_JUDGE_BASE_URL)")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, "
                             f"got {self.base_url!r}")
        if not self.model:
            raise ValueError("LLM judge needs model (or env AUDIT_JUDGE_MODEL)")
        if self.timeout <= 0 or self.retries < 1 or self.backoff < 0:
            raise ValueError("timeout must be > 0, retries >= 1 and backoff >= 0")


def parse_grade(text: str) -> Grade:
    """Read a grade from a judge reply: JSON `{"grade": n}`, "grade: n", or a lone digit 0-3."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            obj = json.loads(match.group(0))
            g = int(obj.get("grade"))
            if 0 <= g <= 3:
                return Grade(g, str(obj.get("rationale", "")).strip())
        except (ValueError, TypeError, AttributeError):
            pass
    m = re.search(r"grade\W{0,3}([0-3])\b", text, re.IGNORECASE) or re.search(
        r"(?<![\d.])([0-3])(?![\d.])", text)
    if m:
        return Grade(int(m.group(1)), text.strip()[:300])
    raise ValueError(f"no 0-3 grade in judge reply: {text[:200]!r}")


class LLMJudge:
    """Grades with a fixed rubric prompt through `POST {base_url}/chat/completions`."""

    def __init__(self, config: LLMJudgeConfig) -> None:
        import httpx

        self.config = config
        self.url = f"{config.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(timeout=config.timeout, headers=headers)

    def _messages(self, prompt: str, completion: str) -> list[dict]:
        target = self.config.target_description or "(see the prompt)"
        user = f"TARGET: {target}\nPROMPT: {prompt}\nCOMPLETION: {completion}"
        return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT},
                {"role": "user", "content": user}]

    def grade(self, prompt: str, completion: str) -> Grade:
        import httpx

        body = {"model": self.config.model, "temperature": 0, "max_tokens": 128,
                "messages": self._messages(prompt, completion)}
        delay, last = self.config.backoff, ""
        for attempt in range(self.config.retries):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:
                raise JudgeError(f"LLM judge at {self.url} refused the request: "
                                 f"HTTP {resp.status_code} {resp.text[:200]}")
            try:
                content = resp.json()["choices"][0]["message"]["content"]
                return parse_grade(content)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                last = f"unreadable reply ({exc})"
        raise JudgeError(f"LLM judge at {self.url} failed after {self.config.retries} "
                         f"attempts: {last}")

    def close(self) -> None:
        self._client.close()
