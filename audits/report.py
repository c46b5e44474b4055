"""Run every measure of a suite on several models and write `report.json` + `report.html`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from audits.constants import DEFAULT_MEASURES, JUDGES, MEASURES
from audits.errors import AuditError
from audits.familiarity import CompletionConfig, completion_familiarity
from audits.forget import forget_quality
from audits.general import GeneralConfig, general_mc, perplexity
from audits.judges import LLMJudge, LLMJudgeConfig, RuleJudge
from audits.neighbour import baseline_name, score_deltas
from audits.probability import ProbabilityConfig, probability_familiarity
from audits.probes import Suite
from audits.trivia import TriviaConfig, trivia_accuracy
from audits.verbatim import VerbatimConfig, verbatim_rouge
from unlearn.runtime import Progress, ProgressFn, package_versions, write_text


@dataclass
class AuditConfig:
    """What `run_suite` measures and how."""

    measures: tuple[str, ...] = DEFAULT_MEASURES  # subset of MEASURES
    seed: int = 0  # seeds sampling (same seed for every model)
    limit: int | None = None  # first N items of every probe set / N perplexity windows
    judge: str = "rule"  # "rule" (offline, from world.json) or "llm" (OpenAI-compatible)
    llm_judge: dict = field(default_factory=dict)  # LLMJudgeConfig fields (env fills the rest)
    completion: CompletionConfig = field(default_factory=CompletionConfig)  # sampling
    probability: ProbabilityConfig = field(default_factory=ProbabilityConfig)  # batch, top-k
    trivia: TriviaConfig = field(default_factory=TriviaConfig)  # batch size
    verbatim: VerbatimConfig = field(default_factory=VerbatimConfig)  # batch, max tokens
    general: GeneralConfig = field(default_factory=GeneralConfig)  # MC batch, ppl windows
    lm_eval_tasks: list[str] = field(default_factory=list)  # e.g. ["arc_easy", "boolq"]
    lm_eval_include: str | None = None  # folder of local lm-eval task YAMLs
    lm_eval_limit: int | None = None  # examples per lm-eval task (None: all)
    lm_eval_batch_size: int = 8  # HFLM batch size
    reference: str = "reference"  # model name that forget quality is measured against
    plot_prompts: int = 4  # probability probes shown as top-k bar charts in the HTML
    n_boot: int = 1000  # bootstrap resamples of the confidence intervals
    mia_k: float = 0.2  # Min-K% prob: fraction of least likely tokens
    adversarial: Any = None  # an AdversarialConfig: also run the adversarial attacks

    def __post_init__(self) -> None:
        self.measures = tuple(self.measures)
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown:
            raise ValueError(f"unknown measure(s) {unknown}; choose from {list(MEASURES)}")
        if self.lm_eval_tasks and "lm_eval" not in self.measures:
            self.measures = (*self.measures, "lm_eval")
        if self.judge not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}, got {self.judge!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")
        if self.plot_prompts < 0:
            raise ValueError("plot_prompts must be >= 0")
        if self.limit is not None and self.general.max_windows is None:
            self.general = replace(self.general, max_windows=self.limit)
        if self.completion.generation.seed != self.seed:  # one seed for the whole run
            self.completion = replace(self.completion, generation=replace(
                self.completion.generation, seed=self.seed))


@dataclass
class ModelReport:
    """Headline scores (plain floats, None when not measured) and per-measure results."""

    scores: dict[str, float | None]
    results: dict[str, Any]


@dataclass
class Report:
    """Everything `write_report` serialises."""

    models: dict[str, ModelReport]
    suite: dict
    config: dict
    seed: int
    versions: dict
    baseline: str  # neighbour deltas are measured against this model
    reference: str | None  # forget quality is measured against this model
    neighbour_deltas: dict = field(default_factory=dict)
    forget_quality: dict = field(default_factory=dict)  # model -> {statistic, pvalue, n}
    topk: list = field(default_factory=list)  # [{prompt, answer, models, answer_probs}]
    skipped: list[str] = field(default_factory=list)  # measures skipped and why
    forget_measures: dict = field(default_factory=dict)  # truth ratio, MIA, PrivLeak, gap closed
    intervals: dict = field(default_factory=dict)  # model -> score -> {mean, ci_low, ci_high, n}
    adversarial: dict = field(default_factory=dict)  # attacks' curves (--suite adversarial)
    created: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that affect the numbers."""
    return package_versions(("torch", "transformers", "tokenizers", "scipy", "rouge_score",
                             "plotly", "lm_eval", "httpx"), absent="absent")


def _judge(config: AuditConfig, suite: Suite, side: str):
    if config.judge == "llm":
        kwargs = dict(config.llm_judge)
        part = (suite.world or {}).get(side) or {}
        if not kwargs.get("target_description") and part:
            terms = ", ".join(part.get("unique_terms", [])[:30])
            kwargs["target_description"] = f"{part.get('name', side)} (key terms: {terms})"
        return LLMJudge(LLMJudgeConfig(**kwargs))
    if not suite.world or not (suite.world.get(side) or {}).get("unique_terms"):
        return None
    return RuleJudge.from_world(suite.world, suite.anchors if side == "target" else None, side)


@dataclass(frozen=True)
class Step:
    """One measure step of a report: what it needs from the suite, how it runs, what it scores."""

    name: str  # step name in the report ("probability", "neighbour_trivia", ...)
    measure: str  # the `AuditConfig.measures` entry that turns it on
    suite_field: str | None  # the Suite attribute holding its data (None: not from the suite)
    file: str  # where that data comes from, for the skip note
    run: Callable[..., Any]  # (model, tokenizer, suite, config, judges) -> result
    headline: tuple[tuple[str, str], ...] = ()  # (score key, attribute of the result)
    judge: str | None = None  # "target" / "neighbour": the completion judge it uses


STEPS: tuple[Step, ...] = (
    Step("completion", "completion", "target_completion", "target_completion.jsonl",
         lambda m, t, s, c, j: completion_familiarity(m, t, s.target_completion, j["target"],
                                                      c.completion),
         (("completion_familiarity", "score"),), judge="target"),
    Step("probability", "probability", "target_probability", "target_probability.jsonl",
         lambda m, t, s, c, j: probability_familiarity(m, t, s.target_probability,
                                                       c.probability),
         (("probability_familiarity", "familiarity"), ("probability_top1", "top1"))),
    Step("trivia", "trivia", "target_trivia", "target_trivia.jsonl",
         lambda m, t, s, c, j: trivia_accuracy(m, t, s.target_trivia, c.trivia),
         (("trivia_accuracy", "accuracy"),)),
    Step("verbatim", "verbatim", "verbatim", "verbatim.jsonl",
         lambda m, t, s, c, j: verbatim_rouge(m, t, s.verbatim, c.verbatim),
         (("verbatim_rougeL", "rougeL"),)),
    Step("general_mc", "general", "general_mc", "general_mc.jsonl",
         lambda m, t, s, c, j: general_mc(m, t, s.general_mc, c.general),
         (("general_accuracy", "accuracy"),)),
    Step("general_cloze", "general", "general_cloze", "general_cloze.jsonl",
         lambda m, t, s, c, j: probability_familiarity(m, t, s.general_cloze, c.probability),
         (("general_cloze_accuracy", "top1"),)),
    Step("perplexity", "general", "heldout_text", "general_heldout.txt",
         lambda m, t, s, c, j: perplexity(m, t, s.heldout_text or "", c.general),
         (("general_perplexity", "perplexity"),)),
    Step("neighbour_probability", "neighbour", "neighbour_probability",
         "neighbour_probability.jsonl",
         lambda m, t, s, c, j: probability_familiarity(m, t, s.neighbour_probability,
                                                       c.probability),
         (("neighbour_probability_familiarity", "familiarity"),)),
    Step("neighbour_trivia", "neighbour", "neighbour_trivia", "neighbour_trivia.jsonl",
         lambda m, t, s, c, j: trivia_accuracy(m, t, s.neighbour_trivia, c.trivia),
         (("neighbour_trivia_accuracy", "accuracy"),)),
    Step("neighbour_completion", "neighbour", "neighbour_completion",
         "neighbour_completion.jsonl",
         lambda m, t, s, c, j: completion_familiarity(m, t, s.neighbour_completion,
                                                      j["neighbour"], c.completion),
         (("neighbour_completion_familiarity", "score"),), judge="neighbour"),
    Step("lm_eval", "lm_eval", None, "--lm-eval tasks", lambda m, t, s, c, j: _lm_eval(m, t, c)),
)
HEADLINE = tuple(key for step in STEPS for key, _ in step.headline)


def _lm_eval(model, tok, config: AuditConfig):
    from audits.lm_eval_tasks import run_lm_eval

    return run_lm_eval(model, tok, config.lm_eval_tasks, limit=config.lm_eval_limit,
                       batch_size=config.lm_eval_batch_size,
                       include_path=config.lm_eval_include, seed=config.seed)


def _skip_reason(step: Step, config: AuditConfig, suite: Suite) -> str | None:
    """Why `step` cannot run on this suite/config (None: it can)."""
    if step.suite_field is None:
        return None if config.lm_eval_tasks else "no tasks given"
    if not getattr(suite, step.suite_field):
        return f"{step.file} absent from the suite"
    if step.judge is not None and config.judge == "rule" and not (
            suite.world and (suite.world.get(step.judge) or {}).get("unique_terms")):
        return "the rule judge needs world.json with unique_terms"
    return None


def _plan(config: AuditConfig, suite: Suite) -> tuple[list[Step], list[str]]:
    """(steps to run per model, skipped notes)."""
    steps, skipped = [], []
    for step in STEPS:
        if step.measure not in config.measures:
            continue
        reason = _skip_reason(step, config, suite)
        if reason is None:
            steps.append(step)
        else:
            skipped.append(f"{step.name if step.suite_field else step.measure}: {reason}")
    return steps, skipped


def run_suite(models: Mapping[str, tuple[Any, Any]], suite: Suite,
              config: AuditConfig | None = None, on_progress: ProgressFn | None = None) -> Report:
    """Measure every `(model, tokenizer)` of `models` (name -> pair) on `suite`.

    A model named `config.reference` is the never-trained reference: every other model gets
    `forget_quality` (KS p-value of its answer probabilities vs the reference's) and
    `forget_ks_statistic`. Neighbour deltas are measured against `original` (else the first).
    `on_progress(Progress("audit", done, total, message=...))` follows each (model, measure) step.
    """
    config = config or AuditConfig()
    if not models:
        raise ValueError("run_suite needs at least one model")
    t0 = time.time()
    suite = suite.limited(config.limit)
    steps, skipped = _plan(config, suite)
    judges = {step.judge: _judge(config, suite, step.judge) for step in steps if step.judge}
    names = list(models)
    total, done = len(steps) * len(names), 0
    reports: dict[str, ModelReport] = {}
    raw: dict[str, dict[str, Any]] = {}
    for name in names:
        model, tok = models[name]
        scores: dict[str, float | None] = {k: None for k in HEADLINE}
        results: dict[str, Any] = {}
        raw[name] = {}
        for step in steps:
            torch.manual_seed(config.seed)
            res = step.run(model, tok, suite, config, judges)
            raw[name][step.name] = res
            results[step.name] = res.to_dict()
            for key, attr in step.headline:
                scores[key] = float(getattr(res, attr))
            done += 1
            if on_progress is not None:
                on_progress(Progress("audit", done, total, message=f"{name}: {step.name}"))
        reports[name] = ModelReport(scores, results)
    base = baseline_name(names)
    deltas = score_deltas({n: r.scores for n, r in reports.items()}, base)
    fq: dict[str, dict] = {}
    ref = config.reference if config.reference in models else None
    if "forget" in config.measures:
        if ref is None:
            skipped.append(f"forget: no model named {config.reference!r}")
        elif "probability" not in raw[names[0]]:
            skipped.append("forget: needs the probability measure and target_probability.jsonl")
        else:
            for name in names:
                if name == ref:
                    continue
                q = forget_quality(raw[name]["probability"].probs, raw[ref]["probability"].probs)
                fq[name] = q.to_dict()
                reports[name].scores["forget_quality"] = q.pvalue
                reports[name].scores["forget_ks_statistic"] = q.statistic
    fm = _forget_measures_step(models, raw, reports, ref, base, suite, config, skipped) \
        if "forget" in config.measures else {}
    intervals = _intervals_step(raw, config)
    adv = _adversarial_step(models, suite, config, reports, intervals, on_progress)
    topk = []
    if "probability" in raw[names[0]]:
        for i, probe in enumerate(suite.target_probability[:config.plot_prompts]):
            topk.append({"prompt": probe.prompt, "answer": probe.answer, "models": {
                n: [list(t) for t in raw[n]["probability"].items[i].topk] for n in names},
                "answer_probs": {n: raw[n]["probability"].items[i].prob for n in names}})
    return Report(models=reports, suite=suite.describe(), config=_config_dict(config),
                  seed=config.seed, versions=versions(), baseline=base, reference=ref,
                  neighbour_deltas=deltas, forget_quality=fq, topk=topk, skipped=skipped,
                  forget_measures=fm, intervals=intervals, adversarial=adv,
                  created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  seconds=round(time.time() - t0, 3))


def _forget_measures_step(models, raw, reports, ref, base, suite: Suite, config: AuditConfig,
                          skipped: list[str]) -> dict:
    """Truth ratio vs the reference, membership-inference AUC + PrivLeak, knowledge gap closed
    (see audits.forget_measures); adds `truth_ratio*`, `mia_auc`, `privleak` and
    `knowledge_gap_closed` to the models' scores."""
    from audits.forget_measures import (
        chunks,
        compare_truth_ratios,
        knowledge_gap_closed,
        mia_scores,
        privleak,
        truth_ratios,
    )

    out: dict = {}
    if suite.target_trivia:
        tr = {n: truth_ratios(m, t, suite.target_trivia, config.trivia.batch_size)
              for n, (m, t) in models.items()}
        for n, r in tr.items():
            if ref is not None and n != ref:
                compare_truth_ratios(r, tr[ref])
            reports[n].scores["truth_ratio"] = r.mean
            reports[n].scores["truth_ratio_forget_quality"] = r.ks_pvalue
        out["truth_ratio"] = {n: r.to_dict() for n, r in tr.items()}
    else:
        skipped.append("truth ratio: target_trivia.jsonl absent")
    members = [v.prefix + v.continuation for v in suite.verbatim]
    if members and suite.heldout_text:
        size = sum(len(x) for x in members) // len(members)
        non = chunks(suite.heldout_text, size, max_chunks=len(members))
        mia = {n: mia_scores(m, t, members, non, config.mia_k, config.verbatim.batch_size)
               for n, (m, t) in models.items()}
        out["mia"] = {n: {"auc": r.auc, "n_members": r.n_members,
                          "n_nonmembers": r.n_nonmembers} for n, r in mia.items()}
        for n, r in mia.items():
            reports[n].scores["mia_auc"] = r.auc["min_k"]
            if ref is not None and n != ref:
                ref_auc = mia[ref].auc["min_k"]
                reports[n].scores["privleak"] = privleak(r.auc["min_k"], ref_auc) \
                    if ref_auc > 0 else None  # undefined for a reference AUC of 0
    else:
        skipped.append("membership inference: needs verbatim.jsonl and general_heldout.txt")
    if ref is not None:
        gaps: dict = {}
        keys = ("probability_familiarity", "trivia_accuracy", "completion_familiarity",
                "verbatim_rougeL")
        for n in models:
            if n in (ref, base):
                continue
            gaps[n] = {}
            for k in keys:
                o, u, r = (reports[x].scores.get(k) for x in (base, n, ref))
                gaps[n][k] = None if None in (o, u, r) else knowledge_gap_closed(o, u, r)
            reports[n].scores["knowledge_gap_closed"] = gaps[n]["probability_familiarity"]
        out["knowledge_gap_closed"] = gaps
    del raw
    return out


def _intervals_step(raw: dict, config: AuditConfig) -> dict:
    """Bootstrap intervals of the headline scores that are means of per-item values
    (perplexity, a ratio over tokens, has none)."""
    from audits.forget_measures import interval

    per_item = {  # step -> [(score key, per-item value)]
        "probability": [("probability_familiarity", lambda it: it.prob),
                        ("probability_top1", lambda it: float(it.top1))],
        "neighbour_probability": [("neighbour_probability_familiarity", lambda it: it.prob)],
        "trivia": [("trivia_accuracy", lambda it: float(it.is_correct))],
        "neighbour_trivia": [("neighbour_trivia_accuracy", lambda it: float(it.is_correct))],
        "verbatim": [("verbatim_rougeL", lambda it: it.rougeL)],
        "general_mc": [("general_accuracy", lambda it: float(it.is_correct))],
        "general_cloze": [("general_cloze_accuracy", lambda it: float(it.top1))],
        "completion": [("completion_familiarity", lambda it: _grade_value(it.grade))],
        "neighbour_completion": [("neighbour_completion_familiarity",
                                  lambda it: _grade_value(it.grade))],
    }
    out: dict = {}
    for name, steps in raw.items():
        out[name] = {}
        for step, res in steps.items():
            for key, value in per_item.get(step, []):
                out[name][key] = interval([value(it) for it in res.items], config.seed,
                                          config.n_boot)
    return out


def _grade_value(grade: int) -> float:
    """A completion's share of the familiarity score (5*#3 + #2) / N."""
    return 5.0 if grade == 3 else 1.0 if grade == 2 else 0.0


def _adversarial_step(models, suite: Suite, config: AuditConfig, reports, intervals: dict,
                      on_progress) -> dict:
    """Run the adversarial attacks when configured; their scores join the models' scores."""
    if config.adversarial is None:
        return {}
    from audits.adversarial.runner import run_adversarial

    adv = run_adversarial(models, suite, config.adversarial, on_progress)
    for name, sc in adv["scores"].items():
        reports[name].scores.update(sc)
        intervals.setdefault(name, {}).update(adv["intervals"].get(name, {}))
    return adv


def _config_dict(config: AuditConfig) -> dict:
    d = asdict(config)
    if d.get("llm_judge", {}).get("api_key"):
        d["llm_judge"]["api_key"] = "***"  # never write secrets into reports
    return d



def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write `report.json` and a self-contained `report.html` atomically; return their paths."""
    from audits.report_html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    try:
        text = json.dumps(data, indent=1, allow_nan=True, default=str)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"report is not serialisable: {exc}") from exc
    paths = {"json": out / "report.json", "html": out / "report.html"}
    write_text(paths["json"], text)
    write_text(paths["html"], render_html(data))
    return paths
