"""lm-evaluation-harness tasks run on an already-loaded model through its `HFLM` wrapper."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audits.errors import AuditError

PAPER_TASKS = ("arc_easy", "arc_challenge", "boolq", "hellaswag", "openbookqa", "piqa",
               "winogrande")
_MANAGERS: dict[tuple, object] = {}  # indexing lm-eval's ~15k task YAMLs takes ~10 s: do it once


@dataclass
class LMEvalResult:
    """Metrics per task, e.g. `{"arc_easy": {"acc": 0.7, "acc_norm": 0.68}}`."""

    tasks: dict[str, dict[str, float]] = field(default_factory=dict)
    limit: int | float | None = None  # examples per task (None: all)
    num_fewshot: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def task_manager(include_path: str | Path | None = None, include_defaults: bool = True):
    """A cached `lm_eval.tasks.TaskManager` over lm-eval's tasks and/or a local YAML folder."""
    from lm_eval.tasks import TaskManager

    key = (str(include_path) if include_path else None, include_defaults)
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=str(include_path) if include_path else None,
                                     include_defaults=include_defaults)
    return _MANAGERS[key]


def _resolve_manager(tasks: Sequence[str], include_path: str | Path | None):
    if include_path is not None:
        if not Path(include_path).is_dir():
            raise AuditError(f"lm-eval include path {include_path} is not a folder")
        local = task_manager(include_path, include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local  # every task is local: skip indexing lm-eval's built-in tasks
    tm = task_manager(include_path, include_defaults=True)
    unknown = [t for t in tasks if t not in tm.all_tasks]
    if unknown:
        raise AuditError(f"unknown lm-eval task(s): {', '.join(unknown)}"
                         + ("" if include_path else " (local YAML tasks need an include path)"))
    return tm


def _check_loadable(tm, tasks: Sequence[str]) -> None:
    """Build each task (this fetches its dataset) so a failure names the task."""
    failed = []
    for name in tasks:
        try:
            tm.load([name])
        except Exception as exc:  # datasets raises ConnectionError, FileNotFoundError, ...
            failed.append(f"{name} ({type(exc).__name__}: {str(exc)[:200]})")
    if failed:
        offline = any(os.environ.get(v) == "1" for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
        hint = ("HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set and the dataset is not cached"
                if offline else "the dataset could not be fetched or read")
        raise AuditError(f"lm-eval task(s) could not be loaded: {'; '.join(failed)}. {hint}; "
                         "download the dataset first or define a local task YAML.")


def _metrics(task_result: dict) -> dict[str, float]:
    out = {}
    for key, value in task_result.items():
        metric, _, _filter = key.partition(",")
        if "stderr" in metric or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        out["n" if metric == "sample_len" else metric] = float(value)
    return out


def run_lm_eval(model, tokenizer, tasks: Sequence[str], limit: int | float | None = None,
                batch_size: int = 8, include_path: str | Path | None = None,
                num_fewshot: int | None = None, seed: int = 0) -> LMEvalResult:
    """Evaluate the loaded `model` on lm-eval `tasks` (names, or tasks from `include_path`).

    Raises `AuditError` naming the task(s) that are unknown or whose dataset cannot be fetched.
    """
    tasks = [t.strip() for t in tasks if t and t.strip()]
    if not tasks:
        raise ValueError("no lm-eval tasks given")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    tm = _resolve_manager(tasks, include_path)
    _check_loadable(tm, tasks)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
              softmax_dtype="float32")
    try:
        res = simple_evaluate(model=lm, tasks=list(tasks), limit=limit, num_fewshot=num_fewshot,
                              task_manager=tm, bootstrap_iters=0, log_samples=False,
                              random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                              fewshot_random_seed=seed)
    except (ConnectionError, OSError) as exc:
        raise AuditError(f"lm-eval task(s) {', '.join(tasks)} failed: {exc}") from exc
    results = (res or {}).get("results", {})
    return LMEvalResult({name: _metrics(r) for name, r in results.items()}, limit, num_fewshot)
