"""`gpu`: the ZeroGPU `spaces.GPU` decorator when the `spaces` package is present, else a no-op.

On ZeroGPU, `spaces` runs every decorated call in a GPU worker process and pickles the call's
arguments and results (each yielded item, for generators). So only plain data may cross that
boundary: decorate module-level functions (never methods: `self` would be pickled), pass names
and settings, and look the models up in module-level state inside the call
(`ui.gpu_tasks`). Every decorated function is recorded in `ENTRY_POINTS`, so a test can check
all of them with a stand-in that pickles like `spaces` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - only on Hugging Face Spaces
    import spaces

    HAS_SPACES = True
except ImportError:
    spaces = None
    HAS_SPACES = False

# name -> undecorated function, for the pickling test
ENTRY_POINTS: dict[str, Callable] = {}


def on_zerogpu() -> bool:
    """True on ZeroGPU hardware (Spaces set SPACES_ZERO_GPU there)."""
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def gpu(fn: Callable | None = None, **kwargs: Any):
    """Use as `@gpu` or `@gpu(duration=120)`; requests a ZeroGPU slot for the call on Spaces."""
    def wrap(f: Callable) -> Callable:
        if "." in f.__qualname__:
            raise TypeError(f"@gpu needs a module-level function, not {f.__qualname__!r}: "
                            "ZeroGPU pickles the arguments, and a method's `self` holds locks")
        ENTRY_POINTS[f"{f.__module__}.{f.__qualname__}"] = f
        if HAS_SPACES:
            return spaces.GPU(**kwargs)(f) if kwargs else spaces.GPU(f)
        return f

    return wrap(fn) if fn is not None else wrap


@gpu(duration=10)
def cuda_memory_gb() -> float | None:
    """Total memory of GPU 0 from the CUDA runtime, read inside the GPU context.

    On ZeroGPU the main process sees no GPU (`nvidia-smi` finds none there); inside a
    `@spaces.GPU` call the CUDA runtime reports the slice this Space gets.
    """
    import torch

    try:
        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_properties(0).total_memory / 1024 ** 3
    except (RuntimeError, AssertionError):
        return None
