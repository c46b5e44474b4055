"""Paraphrase and form variants of probability probes: the paraphrase probe family, aliases
instead of full names, lower-case names, misspelt names. Only probes a variant changes count."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audits.adversarial.world import Entity, entities, name_pattern
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import ProbabilityProbe, load_probes
from unlearn.runtime import Progress, ProgressFn

FORMS = ("alias", "lower", "misspell")


def misspell(word: str) -> str:
    """Swap the two letters in the middle of each word of 5+ letters (deterministic)."""
    parts = []
    for w in word.split(" "):
        if len(w) >= 5:
            m = len(w) // 2
            w = w[:m - 1] + w[m] + w[m - 1] + w[m + 1:]
        parts.append(w)
    return " ".join(parts)


def _sub(text: str, ents: Sequence[Entity], fn: Callable[[Entity, str], str]) -> str:
    pat = name_pattern([f for e in ents for f in e.forms])
    if pat is None:
        return text
    by_form = {}
    for e in ents:
        for f in e.forms:
            by_form.setdefault(f, e)
    return pat.sub(lambda m: fn(by_form[m.group(0)], m.group(0)), text)


def form_variant(probe: ProbabilityProbe, ents: Sequence[Entity], form: str) -> ProbabilityProbe:
    """`probe` with the canon names of its prompt rewritten: "alias" (a full name becomes its
    first alias), "lower" (names and the answer lower-cased), "misspell" (names misspelt)."""
    if form == "alias":
        return replace(probe, prompt=_sub(probe.prompt, ents, lambda e, s: e.aliases[0]
                                          if s == e.name and e.aliases else s))
    if form == "lower":
        return replace(probe, prompt=_sub(probe.prompt, ents, lambda e, s: s.lower()),
                       answer=probe.answer.lower())
    if form == "misspell":
        return replace(probe, prompt=_sub(probe.prompt, ents, lambda e, s: misspell(s)))
    raise ValueError(f"unknown form {form!r}; choose from {FORMS}")


def paraphrase_files(root: str | Path | None) -> list[Path]:
    """`*paraphrase*.jsonl` files of a suite folder (in probes/ or the folder itself)."""
    if not root:
        return []
    root = Path(root)
    folder = root / "probes" if (root / "probes").is_dir() else root
    return sorted(folder.glob("*paraphrase*.jsonl"))


@dataclass
class VariantResult:
    """Per variant: familiarity on the changed probes and the clean familiarity of the same."""

    per_variant: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"per_variant": self.per_variant}


def variant_familiarity(model, tokenizer, probes: Sequence[ProbabilityProbe], world: dict | None,
                        forms: Sequence[str] = FORMS, paraphrases: Sequence[Path] = (),
                        batch_size: int = 32, side: str = "target",
                        on_progress: ProgressFn | None = None) -> VariantResult:
    """Score each form variant of `probes` (and each paraphrase file) against the originals."""
    cfg = ProbabilityConfig(batch_size=batch_size, topk=0)
    ents = entities(world, side)
    res = VariantResult()
    total = len(forms) + len(paraphrases)
    for i, form in enumerate(forms):
        pairs = [(p, form_variant(p, ents, form)) for p in probes]
        pairs = [(p, v) for p, v in pairs if v != p]
        if pairs:
            clean = probability_familiarity(model, tokenizer, [p for p, _ in pairs], cfg)
            var = probability_familiarity(model, tokenizer, [v for _, v in pairs], cfg)
            res.per_variant[form] = {"familiarity": var.familiarity, "top1": var.top1,
                                     "clean_familiarity": clean.familiarity, "n": len(pairs)}
        if on_progress is not None:
            on_progress(Progress("variants", i + 1, total, message=f"form {form}"))
    for j, path in enumerate(paraphrases):
        items = load_probes(path, ProbabilityProbe)
        var = probability_familiarity(model, tokenizer, items, cfg)
        res.per_variant[path.stem] = {"familiarity": var.familiarity, "top1": var.top1,
                                      "clean_familiarity": None, "n": len(items)}
        if on_progress is not None:
            on_progress(Progress("variants", len(forms) + j + 1, total,
                                     message=f"paraphrase {path.name}"))
    return res
