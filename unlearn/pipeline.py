"""The WHP pipeline (reinforce -> labels -> finetune) and the baselines, over one run directory.

Run directory layout:

    RUN_DIR/
      run.json        resolved config, seed, package versions, per-stage status and timings
      reinforced/     the reinforced model (save_pretrained)
      labels/         generic labels (datasets.save_to_disk; resumable through labels.partial/)
      checkpoints/    checkpoint-N folders of the finetune (resumable)
      evals.jsonl     audit scores over finetune steps (when evaluation is on)
      final/          the unlearned model (save_pretrained; LoRA merged)

A stage whose marker in run.json says "done" and whose output is present is reused by a re-run.
A run directory holding a different config is refused unless `force=True`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
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
from unlearn.reinforce import ReinforceConfig, reinforce
from unlearn.runtime import (
    Cancelled,
    ProgressFn,
    StopFn,
    is_main_process,
    package_versions,
    write_json,
)

STAGE_OUTPUTS = ("reinforced", "labels", "labels.partial", "checkpoints", "final", "evals.jsonl")


class RunConfigMismatch(ValueError):
    """The run directory holds a run with a different configuration."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value):
    """Config values as JSON data (dataclasses -> dicts, tuples -> lists)."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class RunDir:
    """A run directory and its `run.json`: stage markers, timings, status."""

    def __init__(self, path: str | Path, kind: str, config: dict, force: bool = False):
        self.path = Path(path)
        self.kind = kind
        self.config = config
        self.fingerprint = hashlib.sha256(
            json.dumps([kind, config], sort_keys=True).encode()).hexdigest()[:16]
        self.file = self.path / "run.json"
        old = json.loads(self.file.read_text()) if self.file.is_file() else None
        if old is not None and old.get("fingerprint") != self.fingerprint:
            if not force:
                raise RunConfigMismatch(
                    f"{self.path} holds a different run ({old.get('kind')}, "
                    f"{_config_diff(old.get('config', {}), config)}); use a new --out "
                    "directory or --force to start over there")
            if is_main_process():
                for name in STAGE_OUTPUTS:
                    target = self.path / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
            old = None
        self.data = old or {"kind": kind, "fingerprint": self.fingerprint, "config": config,
                            "seed": config.get("seed"), "created": _now(), "stages": {}}
        self.data["versions"] = package_versions()
        self.data["status"] = "running"
        self.save()

    def save(self) -> None:
        """Write run.json atomically (main process only)."""
        if not is_main_process():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.data["updated"] = _now()
        write_json(self.file, self.data, indent=2)

    def done(self, stage: str, output_ok: bool) -> bool:
        """True when `stage` finished before and its output is still there."""
        return self.data["stages"].get(stage, {}).get("status") == "done" and output_ok

    def run(self, stage: str, fn: Callable[[], dict | None]) -> dict:
        """Run one stage, recording start, end, seconds and status (done/cancelled/failed)."""
        record = {"status": "running", "started": _now()}
        runs = self.data["stages"].get(stage, {}).get("runs", 0)
        self.data["stages"][stage] = record
        self.save()
        t0 = time.time()
        try:
            info = fn() or {}
        except Cancelled:
            record.update(status="cancelled", seconds=round(time.time() - t0, 3), finished=_now())
            self.data["status"] = "cancelled"
            self.save()
            raise
        except BaseException as exc:
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                          seconds=round(time.time() - t0, 3), finished=_now())
            self.data["status"] = "failed"
            self.save()
            raise
        record.update(info)
        record.update(status=info.get("status", "done"), seconds=round(time.time() - t0, 3),
                      finished=_now(), runs=runs + 1)
        self.save()
        return record

    def finish(self, status: str) -> dict:
        self.data["status"] = status
        self.save()
        return self.data


def _config_diff(old: dict, new: dict, prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            sub = _config_diff(a, b, f"{prefix}{key}.")
            if sub:
                diffs.append(sub)
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return "; ".join(diffs[:5])


def _resolve_model(name: str) -> str:
    """Absolute path for a local model folder; hub ids unchanged."""
    return str(Path(name).resolve()) if Path(name).exists() else name


def _model_ok(path: Path) -> bool:
    return (path / "config.json").is_file()


# ---------------------------------------------------------------- configs

@dataclass
class WHPConfig:
    """The whole WHP pipeline; `block_size`, `seed` and `device` apply to every stage."""

    baseline: str  # model folder or hub id to unlearn from
    target: str  # text file to unlearn (the "books")
    anchors: str  # anchored-term dictionary (JSON or CSV)
    out: str  # run directory
    alphas: tuple[float, ...] = (5.0,)  # Eq. 1 strengths; the finetune uses the first
    label_space: str = "logprob"  # Eq. 1 on log-probabilities or raw "logit" rows (labels.SPACES)
    text_format: str = "auto"  # how the target becomes tokens (data.TEXT_FORMATS; auto: model's)
    block_size: int = 512  # tokens per block (reinforce, labels, finetune)
    max_target_tokens: int | None = None  # use only the first N tokens of the target text
    label_batch_size: int = 8  # blocks per forward pass when computing labels
    seed: int = 0  # one seed for every stage
    device: str = "cpu"  # "cpu" or "cuda"; never guessed
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        for name in ("target", "anchors"):
            if not Path(getattr(self, name)).is_file():
                raise ValueError(f"{name} file not found: {getattr(self, name)}")
        if isinstance(self.alphas, (int, float)):
            self.alphas = (self.alphas,)
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise ValueError(f"alphas must be > 0, got {self.alphas}")
        from unlearn.labels import SPACES

        if self.label_space not in SPACES:
            raise ValueError(f"label_space must be one of {SPACES}, got {self.label_space!r}")
        if self.block_size < 4:
            raise ValueError(f"block_size must be >= 4, got {self.block_size}")
        if self.max_target_tokens is not None and self.max_target_tokens < 8:
            raise ValueError("max_target_tokens must be >= 8")
        if self.label_batch_size < 1:
            raise ValueError("label_batch_size must be >= 1")
        if self.finetune.method != "whp":
            raise ValueError("the WHP pipeline finetunes with method='whp'")
        for sub in (self.reinforce, self.finetune):
            sub.block_size, sub.seed, sub.device = self.block_size, self.seed, self.device
        self.text_format = resolve_text_format(self.text_format, self.baseline)
        self.reinforce.text_format = self.text_format

    def resolved(self) -> dict:
        """JSON-ready config with absolute paths (what run.json stores and compares)."""
        data = _plain(self)
        for name in ("target", "anchors"):
            data[name] = str(Path(data[name]).resolve())
        data["baseline"] = _resolve_model(self.baseline)
        for name in ("probes", "text"):
            if data["eval"].get(name):
                data["eval"][name] = str(Path(data["eval"][name]).resolve())
        data.pop("out")
        return data


@dataclass
class BaselineConfig:
    """A comparison method (GA, GradDiff, NPO) on the target text, same finetune machinery."""

    baseline: str  # model folder or hub id
    target: str  # text to forget
    out: str  # run directory
    retain: str | None = None  # text to keep (graddiff)
    max_target_tokens: int | None = None  # use only the first N tokens of the target text
    max_retain_tokens: int | None = None  # and of the retain text
    text_format: str = "auto"  # how texts become tokens (data.TEXT_FORMATS; auto: the model's)
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(method="ga"))
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.finetune.method not in ("ga", "graddiff", "npo"):
            raise ValueError(f"baseline method must be ga, graddiff or npo, "
                             f"got {self.finetune.method!r}")
        if not Path(self.target).is_file():
            raise ValueError(f"target file not found: {self.target}")
        if self.finetune.method == "graddiff" and not self.retain:
            raise ValueError("graddiff needs a retain text (--retain FILE)")
        if self.retain and not Path(self.retain).is_file():
            raise ValueError(f"retain file not found: {self.retain}")
        self.text_format = resolve_text_format(self.text_format, self.baseline)

    def resolved(self) -> dict:
        data = _plain(self)
        data.pop("out")
        data["baseline"] = _resolve_model(self.baseline)
        data["seed"] = self.finetune.seed
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

    run = RunDir(config.out, "whp", config.resolved(), force=force)
    root = run.path
    tok = load_tokenizer(config.baseline)
    text = truncate_text(tok, read_text(config.target), config.max_target_tokens)
    run.data["target_chars"] = len(text)
    try:
        if not run.done("reinforce", _model_ok(root / "reinforced")):
            def reinforce_stage() -> dict:
                info = reinforce(config.baseline, text, root / "reinforced", config.reinforce,
                                 on_progress, should_stop)
                copy_text_format(config.baseline, root / "reinforced")
                return info

            run.run("reinforce", reinforce_stage)

        def labels_stage() -> dict:
            from unlearn.anchors import filter_redundant, load_anchors
            from unlearn.label_runner import LabelConfig, compute_labels

            anchors, dropped = filter_redundant(load_anchors(config.anchors))
            base, _ = load_model(config.baseline, device=config.device)
            reinf, _ = load_model(str(root / "reinforced"), device=config.device)
            lcfg = LabelConfig(alphas=config.alphas, block_size=config.block_size,
                               batch_size=config.label_batch_size, seed=config.seed,
                               device=config.device, space=config.label_space,
                               text_format=config.text_format)
            ds = compute_labels(base, reinf, tok, text, anchors, lcfg, root / "labels",
                                on_progress, should_stop)
            return {"blocks": len(ds), "anchors": len(anchors), "dropped_anchors": dropped}

        from unlearn.label_store import labels_complete, load_labels, select_alpha

        if not run.done("labels", labels_complete(root / "labels")):
            run.run("labels", labels_stage)
        if not run.done("finetune", _model_ok(root / "final")):
            dataset = select_alpha(load_labels(root / "labels"), config.alphas[0])
            _finetune_stage(run, config.baseline, dataset, config.finetune, config.eval,
                            on_progress, should_stop, evaluator)
    except Cancelled:
        return run.finish("cancelled")
    status = "completed" if _model_ok(root / "final") else "cancelled"
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

    resolved = {"baseline": _resolve_model(baseline), "labels": str(Path(labels_dir).resolve()),
                "alpha": alpha, "finetune": _plain(config),
                "eval": _plain(eval_config or EvalConfig()), "seed": config.seed}
    run = RunDir(out, "finetune", resolved, force=force)
    if not run.done("finetune", _model_ok(run.path / "final")):
        dataset = select_alpha(load_labels(labels_dir), alpha)
        _finetune_stage(run, baseline, dataset, config, eval_config, on_progress, should_stop,
                        evaluator)
    return run.finish("completed" if _model_ok(run.path / "final") else "cancelled")


def run_baseline(config: BaselineConfig, on_progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None, force: bool = False,
                 evaluator: EvaluatorFactory | None = None) -> dict:
    """Gradient ascent / gradient difference / NPO on the target text into a run directory."""
    from unlearn.models import load_tokenizer

    run = RunDir(config.out, "baseline", config.resolved(), force=force)
    if not run.done("finetune", _model_ok(run.path / "final")):
        tok = load_tokenizer(config.baseline)
        bs = config.finetune.block_size
        text = truncate_text(tok, read_text(config.target), config.max_target_tokens)
        dataset = lm_dataset(tok, text, bs, config.text_format)
        if config.finetune.method == "graddiff":
            retain = truncate_text(tok, read_text(config.retain), config.max_retain_tokens)
            dataset = pair_with_retain(dataset, lm_dataset(tok, retain, bs, config.text_format))
        _finetune_stage(run, config.baseline, dataset, config.finetune, config.eval,
                        on_progress, should_stop, evaluator)
    return run.finish("completed" if _model_ok(run.path / "final") else "cancelled")
