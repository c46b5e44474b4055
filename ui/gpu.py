"""`gpu`: the ZeroGPU `spaces.GPU` decorator when the `spaces` package is present, else a no-op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - only on Hugging Face Spaces
    import spaces

    HAS_SPACES = True
except ImportError:
    spaces = None
    HAS_SPACES = False


def gpu(fn: Callable | None = None, **kwargs: Any):
    """Use as `@gpu` or `@gpu(duration=120)`; requests a ZeroGPU slot for the call on Spaces."""
    if HAS_SPACES:
        return spaces.GPU(fn, **kwargs) if fn is not None else spaces.GPU(**kwargs)
    if fn is not None:
        return fn
    return lambda f: f
