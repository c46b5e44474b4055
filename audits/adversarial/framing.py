"""Jailbreak / framing prompts and the prompting baseline, from a user-extendable template file.

A template file is a JSON list of {"id", "kind", "template"}: kind "framing" frames the target
(its title, a saga-style opening, an expert persona, role-play, a system prompt) to draw the
knowledge out; kind "instruction" tells the model to forget (the prompting baseline: what an
instruction alone buys, to compare with unlearning). Placeholders: {prompt} (required: the probe
prompt, which must stay at the end so the answer continues it) and {title} (the target's name).
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audits.errors import ProbeError
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe
from unlearn.runtime import Progress, ProgressFn

DEFAULT_TEMPLATES = Path(__file__).with_name("templates.json")
PLACEHOLDERS = ("prompt", "title")
KINDS = ("framing", "instruction")


@dataclass(frozen=True)
class Template:
    id: str
    kind: str
    template: str

    def apply(self, prompt: str, title: str) -> str:
        return self.template.format(prompt=prompt, title=title)


def check_template(text: str, where: str = "template") -> None:
    """Reject a template without a {prompt} placeholder ending it, or with unknown or malformed
    placeholders. Raises `ProbeError` naming `where`."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ProbeError(f"{where}: malformed placeholder ({exc}); write braces as {{{{ }}}}") \
            from exc
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        raise ProbeError(f"{where}: unknown placeholder(s) {unknown}; use {{prompt}} and "
                         "{title}")
    if "prompt" not in names:
        raise ProbeError(f"{where}: missing placeholder {{prompt}}")
    if not text.rstrip().endswith("{prompt}"):
        raise ProbeError(f"{where}: {{prompt}} must end the template (the answer continues it)")


def load_templates(path: str | Path = DEFAULT_TEMPLATES) -> list[Template]:
    """Load and validate a template file (see the module doc). Raises `ProbeError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(f"{path}: cannot read template file ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ProbeError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, list) or not data:
        raise ProbeError(f"{path}: expected a non-empty JSON list of templates")
    out, seen = [], set()
    for i, obj in enumerate(data):
        where = f"{path}: template {i + 1}"
        if not isinstance(obj, dict):
            raise ProbeError(f"{where}: expected an object with id, kind and template")
        for key in ("id", "kind", "template"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise ProbeError(f"{where}: field {key!r} must be a non-empty string")
        if obj["kind"] not in KINDS:
            raise ProbeError(f"{where}: kind must be one of {KINDS}, got {obj['kind']!r}")
        if obj["id"] in seen:
            raise ProbeError(f"{where}: duplicate id {obj['id']!r}")
        seen.add(obj["id"])
        check_template(obj["template"], f"{where} ({obj['id']})")
        out.append(Template(obj["id"], obj["kind"], obj["template"]))
    return out


@dataclass
class FramingResult:
    """Per template: mean answer probability and top-1 rate on the framed probes."""

    per_template: dict[str, dict] = field(default_factory=dict)  # id -> {kind, familiarity, top1}
    title: str = ""

    def best(self, kind: str = "framing") -> tuple[str | None, float | None]:
        rows = [(k, v["familiarity"]) for k, v in self.per_template.items() if v["kind"] == kind]
        return max(rows, key=lambda r: r[1]) if rows else (None, None)

    def to_dict(self) -> dict:
        tid, fam = self.best()
        return {"per_template": self.per_template, "title": self.title,
                "best_framing": tid, "best_framing_familiarity": fam}


def framed_familiarity(model, tokenizer, probes: Sequence[ProbabilityProbe],
                       templates: Sequence[Template], title: str, batch_size: int = 32,
                       kinds: Sequence[str] = KINDS,
                       on_progress: ProgressFn | None = None) -> FramingResult:
    """Answer probability of the probes wrapped in each template of `kinds`."""
    res = FramingResult(title=title)
    chosen = [t for t in templates if t.kind in kinds]
    for i, t in enumerate(chosen):
        framed = [replace(p, prompt=t.apply(p.prompt, title)) for p in probes]
        r = probability_familiarity(model, tokenizer, framed,
                                    ProbabilityConfig(batch_size=batch_size, topk=0))
        res.per_template[t.id] = {"kind": t.kind, "familiarity": r.familiarity, "top1": r.top1,
                                  "n": len(probes)}
        if on_progress is not None:
            on_progress(Progress("framing", i + 1, len(chosen), message=f"template {t.id}"))
    return res
