"""Run the adversarial attacks on several models and collect plain data for report.json.

Every attack runs on every model (the reference included, trained identically for relearning),
so each attacked score sits next to the reference's. `run_adversarial` returns
{"attacks": {attack: {model: data}}, "scores": {model: {key: value}}, "intervals": ...,
"relearn_split": ..., "skipped": [...]}.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from audits.adversarial.framing import DEFAULT_TEMPLATES, framed_familiarity, load_templates
from audits.adversarial.icl import ICLConfig, icl_relearn
from audits.adversarial.kway import KWayConfig, kway_accuracy
from audits.adversarial.lens import linear_probe, logit_lens
from audits.adversarial.relearn import RelearnConfig, relearn, split_for_relearning
from audits.adversarial.suffix import SuffixConfig, suffix_search
from audits.adversarial.variants import FORMS, paraphrase_files, variant_familiarity
from audits.errors import AuditError
from audits.forget_measures import interval
from audits.probes import Suite
from unlearn.runtime import Progress, ProgressFn

ATTACKS = ("relearn", "icl", "framing", "prompting", "variants", "kway", "lens", "probe",
           "suffix")
# score key -> (attack, what it is); the first three are the report keys
SCORE_KEYS = {
    "relearn_heldout_probability": "held-out answer probability after the last relearn step",
    "relearn_trained_probability": "relearned answers' probability after the last step",
    "icl_relearn_probability": "answer probability with the largest in-context N",
    "kway_accuracy": "many-way choice accuracy at the headline k",
    "kway_chance": "chance level of that choice",
    "framing_best_probability": "answer probability under the best framing template",
    "instruction_probability": "answer probability under the forget instructions (mean)",
    "variant_best_probability": "best answer probability over paraphrase / form variants",
    "lens_peak_probability": "highest per-layer answer probability through the logit lens",
    "lens_last_probability": "the last layer's (the model's own) answer probability",
    "linear_probe_best_accuracy": "best per-layer accuracy of the true/false linear probe",
    "suffix_probability": "answer probability with the best adversarial string (searched)",
    "suffix_heldout_probability": "same string on held-out probes",
}


@dataclass
class AdversarialConfig:
    """Which attacks, on which data, with which budget."""

    attacks: tuple[str, ...] = ATTACKS
    seed: int = 0
    batch_size: int = 32
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    relearn_text: str | None = None  # relearning file (default: <suite>/target.txt subset)
    cache_dir: str | None = None  # relearning curves are cached here
    icl: ICLConfig = field(default_factory=ICLConfig)
    kway: KWayConfig = field(default_factory=KWayConfig)
    templates: str = str(DEFAULT_TEMPLATES)
    forms: tuple[str, ...] = FORMS
    suffix: SuffixConfig = field(default_factory=SuffixConfig)
    suffix_probes: int = 8  # probes the string is searched on; the next 2x are held out
    probe_folds: int = 5
    n_boot: int = 1000

    def __post_init__(self) -> None:
        self.attacks = tuple(self.attacks)
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown or not self.attacks:
            raise ValueError(f"unknown attack(s) {unknown or '(none)'}; choose from {ATTACKS}")
        if self.suffix_probes <= 0:
            raise ValueError("suffix_probes must be positive")
        if self.relearn_text is not None and not Path(self.relearn_text).is_file():
            raise ValueError(f"relearning file does not exist: {self.relearn_text}")
        load_templates(self.templates)  # fail early on a bad template file


def _title(suite: Suite) -> str:
    return str(((suite.world or {}).get("target") or {}).get("name") or "the story")


def _relearn_split(suite: Suite, config: AdversarialConfig):
    if config.relearn_text:
        text, given = Path(config.relearn_text).read_text(encoding="utf-8"), True
    else:
        path = Path(suite.root or "") / "target.txt"
        if not suite.root or not path.is_file():
            return None
        text, given = path.read_text(encoding="utf-8"), False
    return split_for_relearning(text, suite.target_probability, config.relearn.fraction,
                                config.relearn.seed, given=given)


def run_adversarial(models: Mapping[str, tuple[Any, Any]], suite: Suite,
                    config: AdversarialConfig | None = None,
                    on_progress: ProgressFn | None = None, should_stop=None) -> dict:
    """Run every configured attack on every model; see the module doc for the result."""
    config = config or AdversarialConfig()
    probes = suite.target_probability
    if not probes:
        raise AuditError("adversarial attacks need target_probability.jsonl")
    t0 = time.time()
    out: dict[str, Any] = {"attacks": {a: {} for a in config.attacks}, "scores": {},
                           "intervals": {}, "skipped": [], "config": asdict(config),
                           "keys": SCORE_KEYS}
    attacks = list(config.attacks)
    split = None
    if "relearn" in attacks:
        try:
            split = _relearn_split(suite, config)
        except ValueError as exc:
            raise AuditError(f"relearning data: {exc}") from exc
        if split is None or not split.heldout:
            out["skipped"].append("relearn: no target.txt in the suite and no --relearn-text"
                                  if split is None else "relearn: no held-out probes")
            attacks.remove("relearn")
        else:
            out["relearn_split"] = {"paragraphs": len(split.paragraphs),
                                    "heldout": [p.id for p in split.heldout],
                                    "trained": [p.id for p in split.trained]}
    if "probe" in attacks and len(suite.target_trivia) < config.probe_folds:
        out["skipped"].append("probe: needs target_trivia.jsonl with enough probes")
        attacks.remove("probe")
    if "kway" in attacks and not suite.world:
        out["skipped"].append("kway: needs world.json for same-kind names")
        attacks.remove("kway")
    templates = load_templates(config.templates)
    title = _title(suite)
    total = len(attacks) * len(models)
    done = 0
    for name, (model, tok) in models.items():
        sc: dict[str, float | None] = {}
        ci: dict[str, dict] = {}
        for attack in attacks:
            if should_stop is not None and should_stop():
                raise InterruptedError("adversarial run cancelled")
            torch.manual_seed(config.seed)
            data = _run_attack(attack, model, tok, suite, config, split, templates, title, sc,
                               ci, should_stop)
            out["attacks"][attack][name] = data
            done += 1
            if on_progress is not None:
                on_progress(Progress("adversarial", done, total, message=f"{name}: {attack}"))
        out["scores"][name] = sc
        out["intervals"][name] = ci
    out["seconds"] = round(time.time() - t0, 2)
    return out


def _run_attack(attack, model, tok, suite, config, split, templates, title, sc, ci,
                should_stop) -> dict:
    probes, bs = suite.target_probability, config.batch_size
    if attack == "relearn":
        r = relearn(model, tok, split, config.relearn, config.cache_dir, should_stop=should_stop)
        sc["relearn_heldout_probability"] = r.final_heldout()
        sc["relearn_trained_probability"] = r.trained[-1] if r.trained else None
        return r.to_dict()
    if attack == "icl":
        r = icl_relearn(model, tok, probes, config.icl)
        sc["icl_relearn_probability"] = r.at_max()
        ci["icl_relearn_probability"] = interval(r.probs[max(r.probs)], config.seed,
                                                 config.n_boot)
        return r.to_dict()
    if attack in ("framing", "prompting"):
        kinds = ("framing",) if attack == "framing" else ("instruction",)
        r = framed_familiarity(model, tok, probes, templates, title, bs, kinds)
        fams = [v["familiarity"] for v in r.per_template.values()]
        if attack == "framing":
            sc["framing_best_probability"] = max(fams) if fams else None
        else:
            sc["instruction_probability"] = sum(fams) / len(fams) if fams else None
        return r.to_dict()
    if attack == "variants":
        r = variant_familiarity(model, tok, probes, suite.world, config.forms,
                                paraphrase_files(suite.root), bs)
        fams = [v["familiarity"] for v in r.per_variant.values()]
        sc["variant_best_probability"] = max(fams) if fams else None
        return r.to_dict()
    if attack == "kway":
        r = kway_accuracy(model, tok, probes, suite.world, config.kway)
        k = config.kway.headline_k
        sc["kway_accuracy"] = r.accuracy(k)
        sc["kway_chance"] = (r.per_k.get(k) or {}).get("chance")
        ci["kway_accuracy"] = interval([float(it.correct) for it in r.items if it.k == k],
                                       config.seed, config.n_boot)
        return r.to_dict()
    if attack == "lens":
        r = logit_lens(model, tok, probes, batch_size=min(bs, 16))
        sc["lens_peak_probability"] = max(r.mean)
        sc["lens_last_probability"] = r.mean[-1]
        return r.to_dict()
    if attack == "probe":
        r = linear_probe(model, tok, suite.target_trivia, config.probe_folds, config.seed)
        sc["linear_probe_best_accuracy"] = max(r.accuracy)
        return r.to_dict()
    if attack == "suffix":
        n = config.suffix_probes
        r = suffix_search(model, tok, probes[:n], probes[n:3 * n], config.suffix)
        sc["suffix_probability"] = r.best_prob
        sc["suffix_heldout_probability"] = r.heldout_best_prob
        return r.to_dict()
    raise AssertionError(attack)
