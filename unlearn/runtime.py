"""What every long job of the toolkit shares: cancellation, progress events, atomic writes.

* `Cancelled`: the one exception a stage raises when its `should_stop()` fired. The UI and the
  CLI catch this type (never a class-name match).
* `Progress` / `ProgressFn`: the one progress event and callback signature,
  `on_progress(Progress(stage, step, total, loss, message))`.
* `write_json` / `write_text` (a file), `publish_dir` / `temp_dir_next_to` (a directory):
  readers see the old content or the new one, never half of it.
* `IGNORE_INDEX` (the causal-LM label convention) and `package_versions` (for run records).
* `is_main_process` / `world_size` / `process_device` / `process_group`: the process layout of an
  `accelerate launch` (or `torchrun`) run, read from the launcher's environment.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IGNORE_INDEX", "Cancelled", "Progress", "ProgressFn", "StopFn", "write_json",
           "write_text", "publish_dir", "temp_dir_next_to", "package_versions",
           "is_main_process", "world_size", "process_device", "process_group",
           "sharded_launch"]

IGNORE_INDEX = -100  # HF label convention: positions with this label are not trained


class Cancelled(RuntimeError):
    """A stage was stopped by its `should_stop()` before it finished (a re-run resumes)."""


@dataclass(frozen=True)
class Progress:
    """One progress report: `step` of `total` units of `stage` done (total None: unknown)."""

    stage: str
    step: int
    total: int | None = None
    loss: float | None = None  # training stages: the last logged loss
    message: str = ""


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


def is_main_process() -> bool:
    """False on the non-zero ranks of a multi-process (`accelerate launch`) run."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """How many processes the launcher started (1 outside `accelerate launch`/`torchrun`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_device(device: str) -> str:
    """This process's device: a bare "cuda" becomes `cuda:<LOCAL_RANK>` in a multi-process run
    (one GPU a process); everything else is returned unchanged."""
    if device == "cuda" and world_size() > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def sharded_launch() -> bool:
    """True under `accelerate launch` with an FSDP or DeepSpeed config: the wrapper, not the
    caller, places the (sharded) weights on the devices."""
    return any(os.environ.get(k, "").lower() == "true"
               for k in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"))


def process_group(device: str):
    """`accelerate.PartialState` joined to the launcher's process group, or None in a single
    process. `cpu=True` on CPU: without it accelerate 1.x treats a CPU-only `--multi_gpu` launch
    as one process and never creates the (gloo) group."""
    if world_size() <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=str(device).split(":")[0] == "cpu")


# ---------------------------------------------------------------- atomic writes

def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data, indent: int | None = 1, sort_keys: bool = True) -> None:
    """`json.dumps(data)` written atomically (see `write_text`)."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False))


def temp_dir_next_to(target: str | Path) -> Path:
    """A fresh hidden folder beside `target` (same filesystem: `publish_dir` can rename it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def publish_dir(tmp: str | Path, target: str | Path) -> None:
    """Move a finished folder `tmp` to `target`, replacing what was there by renames only."""
    tmp, target = Path(tmp), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


# ---------------------------------------------------------------- run records

VERSIONED_PACKAGES = ("whp-unlearn", "torch", "transformers", "datasets", "peft", "accelerate",
                      "bitsandbytes", "tokenizers")


def package_versions(names: tuple[str, ...] = VERSIONED_PACKAGES,
                     absent: str | None = None) -> dict[str, str]:
    """Python's and the installed packages' versions; an absent package is left out, or given
    the value `absent` when that is set."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = md.version(name.replace("_", "-"))
        except md.PackageNotFoundError:
            if absent is not None:
                out[name] = absent
    from unlearn import __version__

    out["unlearn"] = __version__
    return out
