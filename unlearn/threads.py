"""The CPU thread policy: how many torch intra-op threads each kind of work gets, in one place.

* A **generation stream** (one decode loop: a few tokens per forward) gets `STREAM_THREADS` = 1.
  Its matmuls are small (a 256-wide layer per token on the demo model), so a second thread
  only adds an OpenMP fork/join per op; two streams (the two panes, or the two models of WHP at
  inference) then take one core each instead of four threads fighting for two cores.
* A **batched pool** (probability scoring, label generation: whole batches per forward) gets
  `pool_threads()`: the cores this process may use that other processes are not already
  keeping busy (the 1-minute load average), at least 1. On a shared machine an OpenMP team
  larger than the free cores spins at every barrier waiting for a descheduled member; it is
  many times slower than one thread (benchmarks/bench_threads.py measures it).
* `WHP_THREADS=N` in the environment overrides both (N >= 1), e.g. on a dedicated machine.

torch's thread count is a per-thread setting (OpenMP), so `torch_threads` changes it for the
calling thread only, and restores it afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

STREAM_THREADS = 1  # torch threads per generation stream
ENV_OVERRIDE = "WHP_THREADS"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _override() -> int | None:
    raw = os.environ.get(ENV_OVERRIDE, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_OVERRIDE} must be a whole number >= 1, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{ENV_OVERRIDE} must be >= 1, got {value}")
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
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
