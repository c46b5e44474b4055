"""Run directories: `run.json` (config, fingerprint, versions, per-stage status and timings) and
the listing the app shows. Light on purpose (no torch): the UI lists runs at start-up.

Layout of a run directory (written by `unlearn.pipeline`):

    RUN_DIR/
      run.json        resolved config, seed, package versions, per-stage status and timings
      reinforced/     the reinforced model (save_pretrained)
      labels/         generic labels (datasets.save_to_disk; resumable through labels.partial/)
      checkpoints/    checkpoint-N folders of the finetune (resumable)
      evals.jsonl     audit scores over finetune steps (when evaluation is on)
      final/          the unlearned model (save_pretrained; LoRA merged)
      adapter/        with --lora --lora-adapter: the unmerged LoRA adapter (peft; loads on the
                      baseline shared with the original side, unlearn.models.with_adapter)

A stage whose marker in run.json says "done" and whose output is present is reused by a re-run.
A run directory holding a different config is refused unless `force=True`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from unlearn.runtime import Cancelled, is_main_process, package_versions, write_json

__all__ = ["RunDir", "RunConfigMismatch", "list_runs", "STAGE_OUTPUTS", "model_ok", "plain",
           "resolve_model"]

STAGE_OUTPUTS = ("reinforced", "labels", "labels.partial", "checkpoints", "final", "evals.jsonl")


ADAPTER_DIR = "adapter"  # <run>/adapter: the unmerged LoRA adapter (finetune `lora_adapter`)


class RunConfigMismatch(ValueError):
    """The run directory holds a run with a different configuration."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def plain(value):
    """Config values as JSON data (dataclasses -> dicts, tuples -> lists)."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
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


def resolve_model(name: str) -> str:
    """Absolute path for a local model folder; hub ids unchanged."""
    return str(Path(name).resolve()) if Path(name).exists() else name


def model_ok(path: Path) -> bool:
    return (path / "config.json").is_file()


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Run directories under `runs_dir`, newest first: `{"run", "kind", "status", "final",
    "created", "mtime"}` from each `run.json` (unreadable ones are left out)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out = []
    for run_json in runs_dir.glob("*/run.json"):
        try:
            data = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        out.append({"run": str(run_json.parent), "kind": data.get("kind", "?"),
                    "status": data.get("status", "?"),
                    "final": model_ok(run_json.parent / "final"),
                    "created": data.get("created", ""), "mtime": run_json.stat().st_mtime})
    return sorted(out, key=lambda r: -r["mtime"])
