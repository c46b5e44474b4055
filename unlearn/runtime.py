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
* The CPU thread policy: `stream_threads()` / `pool_threads()` / `torch_threads(n)` (below).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IGNORE_INDEX", "Cancelled", "Progress", "ProgressFn", "StopFn", "write_json",
           "write_text", "publish_dir", "temp_dir_next_to", "package_versions",
           "is_main_process", "world_size", "process_device", "process_group",
           "sharded_launch", "STREAM_THREADS", "THREADS_ENV", "usable_cores",
           "stream_threads", "pool_threads", "torch_threads"]

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


# ---------------------------------------------------------------- CPU thread policy
# The CPU thread policy: how many torch intra-op threads each kind of work gets, in one place.
#
# * A **generation stream** (one decode loop: a few tokens per forward) gets `STREAM_THREADS` = 1.
#   Its matmuls are small (a 256-wide layer per token on the demo model), so a second thread
#   only adds an OpenMP fork/join per op; two streams (the two panes, or the two models of WHP at
#   inference) then take one core each instead of four threads fighting for two cores.
# * A **batched pool** (probability scoring: whole batches per forward) gets
#   `pool_threads()`: the cores this process may use that other processes are not already
#   keeping busy (the 1-minute load average), at least 1. On a shared machine an OpenMP team
#   larger than the free cores spins at every barrier waiting for a descheduled member; it is
#   many times slower than one thread (benchmarks/bench_threads.py measures it).
# * `WHP_THREADS=N` in the environment overrides both (N >= 1), e.g. on a dedicated machine.
#
# torch's thread count is a per-thread setting (OpenMP), so `torch_threads` changes it for the
# calling thread only, and restores it afterwards.

STREAM_THREADS = 1  # torch threads per generation stream
THREADS_ENV = "WHP_THREADS"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _override() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{THREADS_ENV} must be >= 1, got {value}")
    return value


def stream_threads() -> int:
    """Threads for one generation stream (`STREAM_THREADS`, or the `WHP_THREADS` override)."""
    return _override() or STREAM_THREADS


def pool_threads(load: float | None = None, cores: int | None = None) -> int:
    """Threads for batched work: the usable cores minus the 1-minute load average (rounded),
    clamped to [1, cores]; `WHP_THREADS` overrides. `load` / `cores` default to this machine's."""
    forced = _override()
    if forced is not None:
        return forced
    cores = usable_cores() if cores is None else int(cores)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: assume a machine of our own
            load = 0.0
    return max(1, min(cores, cores - round(load)))


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with `n` torch intra-op threads in this thread, then restore the count."""
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    import torch  # here: the rest of this module does not need it

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
