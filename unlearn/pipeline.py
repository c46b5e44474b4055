"""The WHP pipeline (reinforce -> labels -> finetune) and the comparison methods (GA, GradDiff,
NPO), each in a run directory (`unlearn.run_dir`: layout, run.json, reuse and resume)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from unlearn.data import (
    copy_text_format,
    lm_dataset,
    pair_with_retain,
    read_text,
    resolve_text_format,
    truncate_text,
)
from unlearn.evaluate import EvalConfig, EvaluatorFactory
from unlearn.finetune import FinetuneConfig, finetune
from unlearn.label_runner import LabelConfig
from unlearn.options import (
    at_least,
    block_size_field,
    device_field,
    existing_file,
    model_path,
    option,
    text_format_field,
    validate,
)
from unlearn.reinforce import ReinforceConfig, reinforce
from unlearn.run_dir import RunDir, model_ok, plain, resolve_model
from unlearn.runtime import (
    Cancelled,
    ProgressFn,
    StopFn,
    process_device,
)

# ---------------------------------------------------------------- configs

SHARED_FIELDS = ("block_size", "seed", "device", "text_format")  # set once, on the pipeline


def _check_shared(parent, subs: dict) -> None:
    """A nested config may not set a shared field itself (it would be silently overridden)."""
    for sub_name, sub in subs.items():
        defaults = {f.name: f.default for f in fields(sub)}
        for name in SHARED_FIELDS:
            if name in defaults and getattr(sub, name) != defaults[name] \
                    and getattr(sub, name) != getattr(parent, name):
                raise ValueError(f"{sub_name}.{name}={getattr(sub, name)!r} conflicts with the "
                                 f"pipeline's {name}={getattr(parent, name)!r}: set {name} once, "
                                 "on the pipeline config (it applies to every stage)")


def _shared(parent, sub, text_format: str | None):
    """A copy of `sub` with the pipeline's shared fields (the one place they are resolved)."""
    names = {f.name for f in fields(sub)}
    values = {n: getattr(parent, n) for n in SHARED_FIELDS if n in names and n != "text_format"}
    if "text_format" in names and text_format is not None:
        values["text_format"] = text_format
    return replace(sub, **values)


@dataclass
class WHPConfig:
    """The whole WHP pipeline: reinforce -> labels -> finetune, each stage with its own config.

    `block_size`, `seed`, `device` and `text_format` are set here once for every stage (`stages`
    resolves them; a nested config that sets one differently is refused). Paths are checked by
    `check_inputs`, "auto" text format by `unlearn.data.resolve_text_format`, both in `run_whp`.
    """

    baseline: str = option(help="model to unlearn from (folder or hub id)", parse=model_path)
    target: str = option(help="text to unlearn", parse=existing_file)
    anchors: str = option(help="anchored terms JSON/CSV", parse=existing_file)
    out: str = option(help="run directory")
    text_format: str = text_format_field("auto", auto=True)
    block_size: int = block_size_field(minimum=4)
    max_target_tokens: int | None = option(
        None, "use only the first N tokens of the target text", check=at_least(8))
    seed: int = option(0, "seed for every stage")
    device: str = device_field()
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        validate(self)
        if self.finetune.method != "whp":
            raise ValueError("the WHP pipeline finetunes with method='whp'")
        _check_shared(self, {"reinforce": self.reinforce, "labels": self.labels,
                             "finetune": self.finetune})

    def check_inputs(self) -> None:
        """The target and anchors files exist (and the eval files)."""
        for name in ("target", "anchors"):
            if not Path(getattr(self, name)).is_file():
                raise ValueError(f"{name} file not found: {getattr(self, name)}")
        self.eval.check_files()

    def stages(self, text_format: str) -> dict:
        """The reinforce, labels and finetune configs as they run (shared fields filled in)."""
        return {"reinforce": _shared(self, self.reinforce, text_format),
                "labels": _shared(self, self.labels, text_format),
                "finetune": _shared(self, self.finetune, None)}

    def resolved(self, text_format: str) -> dict:
        """JSON-ready config as it runs, with absolute paths (what run.json stores and compares)."""
        data = {f.name: plain(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("reinforce", "labels", "finetune", "out")}
        data.update({k: plain(v) for k, v in self.stages(text_format).items()})
        data["text_format"] = text_format
        for name in ("target", "anchors"):
            data[name] = str(Path(data[name]).resolve())
        data["baseline"] = resolve_model(self.baseline)
        _absolute_eval_paths(data)
        return data


def _absolute_eval_paths(data: dict) -> None:
    for name in ("probes", "text"):
        if data["eval"].get(name):
            data["eval"][name] = str(Path(data["eval"][name]).resolve())


COMPARISON_METHODS = ("ga", "graddiff", "npo")


@dataclass
class ComparisonConfig:
    """A comparison method (GA, GradDiff, NPO) on the target text, same finetune machinery."""

    baseline: str = option(help="model to unlearn from (folder or hub id)", parse=model_path)
    target: str = option(help="text to forget", parse=existing_file)
    out: str = option(help="run directory")
    retain: str | None = option(None, "text to keep (graddiff)", parse=existing_file)
    max_target_tokens: int | None = option(
        None, "use only the first N tokens of the target text", check=at_least(8))
    max_retain_tokens: int | None = option(
        None, "use only the first N tokens of the retain text", check=at_least(8))
    text_format: str = text_format_field("auto", auto=True)
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(method="ga"))
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        validate(self)
        if self.finetune.method not in COMPARISON_METHODS:
            raise ValueError(f"comparison method must be one of {COMPARISON_METHODS}, "
                             f"got {self.finetune.method!r}")
        if self.finetune.method == "graddiff" and not self.retain:
            raise ValueError("graddiff needs a retain text (--retain FILE)")

    def check_inputs(self) -> None:
        for name in ("target", "retain"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name} file not found: {value}")
        self.eval.check_files()

    def resolved(self, text_format: str) -> dict:
        data = plain(self)
        data.pop("out")
        data["baseline"] = resolve_model(self.baseline)
        data["text_format"] = text_format
        data["seed"] = self.finetune.seed
        _absolute_eval_paths(data)
        return data


# ---------------------------------------------------------------- runners

def run_whp(config: WHPConfig, on_progress: ProgressFn | None = None,
            should_stop: StopFn | None = None, force: bool = False,
            evaluator: EvaluatorFactory | None = None) -> dict:
    """Run reinforce -> labels -> finetune into `config.out`; return run.json's content.

    Stages already done are reused. `should_stop()` cancels the running stage (a re-run
    resumes: labels from finished shards, finetune from its last checkpoint); the returned
    status is then "cancelled". `evaluator` builds the checkpoint evaluator when `config.eval`
    asks for measurements (`audits.checkpoint.checkpoint_evaluator`).
    """
    from unlearn.models import load_model, load_tokenizer

    config.check_inputs()
    text_format = resolve_text_format(config.text_format, config.baseline)
    stages = config.stages(text_format)
    run = RunDir(config.out, "whp", config.resolved(text_format), force=force)
    root = run.path
    tok = load_tokenizer(config.baseline)
    text = truncate_text(tok, read_text(config.target), config.max_target_tokens)
    run.data["target_chars"] = len(text)
    try:
        if not run.done("reinforce", model_ok(root / "reinforced")):
            def reinforce_stage() -> dict:
                info = reinforce(config.baseline, text, root / "reinforced", stages["reinforce"],
                                 on_progress, should_stop)
                copy_text_format(config.baseline, root / "reinforced")
                return info

            run.run("reinforce", reinforce_stage)

        def labels_stage() -> dict:
            from unlearn.anchors import filter_redundant, load_anchors
            from unlearn.label_runner import compute_labels

            anchors, dropped = filter_redundant(load_anchors(config.anchors))
            device = process_device(config.device)  # one GPU a process under accelerate launch
            dtype = stages["labels"].dtype
            base, _ = load_model(config.baseline, device=device, dtype=dtype)
            reinf, _ = load_model(str(root / "reinforced"), device=device, dtype=dtype)
            ds = compute_labels(base, reinf, tok, text, anchors,
                                replace(stages["labels"], device=device), root / "labels",
                                on_progress, should_stop)
            return {"blocks": len(ds), "anchors": len(anchors), "dropped_anchors": dropped}

        from unlearn.label_store import labels_complete, load_labels, select_alpha

        if not run.done("labels", labels_complete(root / "labels")):
            run.run("labels", labels_stage)
        if not run.done("finetune", model_ok(root / "final")):
            dataset = select_alpha(load_labels(root / "labels"), config.labels.alphas[0])
            _finetune_stage(run, config.baseline, dataset, stages["finetune"], config.eval,
                            on_progress, should_stop, evaluator)
    except Cancelled:
        return run.finish("cancelled")
    status = "completed" if model_ok(root / "final") else "cancelled"
    return run.finish(status)


def _finetune_stage(run: RunDir, baseline: str, dataset, config: FinetuneConfig,
                    eval_config: EvalConfig | None, on_progress, should_stop,
                    evaluator: EvaluatorFactory | None) -> dict:
    def stage() -> dict:
        result = finetune(baseline, dataset, run.path, config, eval_config, on_progress,
                          should_stop, evaluator)
        copy_text_format(baseline, run.path / "final")
        info = {"status": "done" if result.status == "completed" else "cancelled",
                "step": result.step, "resumed_from": result.resumed_from,
                "final_loss": result.losses[-1] if result.losses else None,
                "blocks": len(dataset)}
        if result.status != "completed":
            run.data["status"] = "cancelled"
        return info

    return run.run("finetune", stage)


def run_finetune(baseline: str, labels_dir: str, out: str, config: FinetuneConfig,
                 eval_config: EvalConfig | None = None, alpha: float | None = None,
                 on_progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                 force: bool = False, evaluator: EvaluatorFactory | None = None) -> dict:
    """Only the WHP finetune, on a finished label dataset; `out` is a run directory."""
    from unlearn.label_store import load_labels, select_alpha

    if eval_config is not None:
        eval_config.check_files()
    resolved = {"baseline": resolve_model(baseline), "labels": str(Path(labels_dir).resolve()),
                "alpha": alpha, "finetune": plain(config),
                "eval": plain(eval_config or EvalConfig()), "seed": config.seed}
    run = RunDir(out, "finetune", resolved, force=force)
    if not run.done("finetune", model_ok(run.path / "final")):
        dataset = select_alpha(load_labels(labels_dir), alpha)
        _finetune_stage(run, baseline, dataset, config, eval_config, on_progress, should_stop,
                        evaluator)
    return run.finish("completed" if model_ok(run.path / "final") else "cancelled")


def run_comparison(config: ComparisonConfig, on_progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None, force: bool = False,
                   evaluator: EvaluatorFactory | None = None) -> dict:
    """Gradient ascent / gradient difference / NPO on the target text into a run directory."""
    from unlearn.models import load_tokenizer

    config.check_inputs()
    text_format = resolve_text_format(config.text_format, config.baseline)
    run = RunDir(config.out, "comparison", config.resolved(text_format), force=force)
    if not run.done("finetune", model_ok(run.path / "final")):
        tok = load_tokenizer(config.baseline)
        bs = config.finetune.block_size
        text = truncate_text(tok, read_text(config.target), config.max_target_tokens)
        dataset = lm_dataset(tok, text, bs, text_format)
        if config.finetune.method == "graddiff":
            retain = truncate_text(tok, read_text(config.retain), config.max_retain_tokens)
            dataset = pair_with_retain(dataset, lm_dataset(tok, retain, bs, text_format))
        _finetune_stage(run, config.baseline, dataset, config.finetune, config.eval,
                        on_progress, should_stop, evaluator)
    return run.finish("completed" if model_ok(run.path / "final") else "cancelled")
