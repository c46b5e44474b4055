"""Server-wide model store: models are loaded once and shared by every session (bounded cache).

Sessions only hold *names* of models (a path or hub id per side), so memory does not grow with
the number of visitors; a session that loads a finetuned model into its right-hand side adds one
cache entry, evicted least-recently-used when the cache is full (the start-up models stay).
A LoRA adapter folder is loaded on its base's entry (`unlearn.models.with_adapter`): the base's
weights are held once for both sides.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ui.config import AppConfig
from unlearn.models import (
    ADAPTER_CONFIG,
    LoadConfig,
    ModelLoadError,
    adapter_base,
    load_model,
    with_adapter,
)
from unlearn.models import model_key as normalise

log = logging.getLogger("app")
SIDES = ("original", "unlearned")  # left pane, right pane
SIDE_LABELS = {"original": "Original", "unlearned": "Unlearned", "reference": "Reference"}


@dataclass
class Loaded:
    """A loaded model and its tokenizer."""

    name: str
    model: Any
    tokenizer: Any


class ModelStore:
    """Thread-safe LRU cache of loaded models keyed by path/hub id."""

    def __init__(self, device: str = "cpu", dtype: str = "auto", quantization: str = "none",
                 max_models: int = 5):
        self.kwargs = {"device": device, "dtype": dtype, "quantization": quantization}
        self.max_models = max_models
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._pinned: set[str] = set()
        self._lock = threading.RLock()  # re-entered: an adapter loads its base first

    def get(self, name: str, pin: bool = False) -> Loaded:
        """The loaded model `name`; loads it on first use. Raises `ModelLoadError`."""
        key = normalise(name)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            try:
                base = adapter_base(key)
                if base is not None:  # a LoRA adapter: on the (shared) base's weights
                    under = self.get(base, pin=pin)
                    log.info("loading adapter %s on %s", key, under.name)
                    model, tok = with_adapter(under.model, key), under.tokenizer
                else:
                    log.info("loading model %s (%s)", key, self.kwargs)
                    model, tok = load_model(LoadConfig(key, **self.kwargs))
            except ValueError as exc:
                raise ModelLoadError(f"cannot load {key!r}: {exc}") from exc
            loaded = Loaded(key, model, tok)
            self._models[key] = loaded
            if pin:
                self._pinned.add(key)
            self._evict()
            return loaded

    def _evict(self) -> None:
        for key in list(self._models):
            if len(self._models) <= self.max_models:
                break
            if key not in self._pinned:
                del self._models[key]

    def footprint_gb(self) -> float:
        """Memory held by the loaded models' weights and buffers, in GB (a tensor shared by
        a base and its adapters counted once)."""
        with self._lock:
            seen: dict[int, int] = {}
            for m in self._models.values():
                for t in itertools.chain(m.model.parameters(), m.model.buffers()):
                    seen[t.data_ptr()] = t.nelement() * t.element_size()
            return sum(seen.values()) / 1024 ** 3

    def loaded_names(self) -> list[str]:
        with self._lock:
            return list(self._models)


def exists_locally(name: str) -> bool:
    folder = Path(name).expanduser()
    return (folder / "config.json").exists() or (folder / ADAPTER_CONFIG).exists()


def looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


@dataclass
class Startup:
    """What the app shows at start: a model name per side (or None) and notices for the user."""

    sides: dict[str, str | None]
    reference: str | None
    notices: list[str]
    fallback: str | None = None  # "Reference" / "Original" when the right side stands in


def start_models(config: AppConfig, store: ModelStore) -> Startup:
    """Load the configured models, falling back with a notice when one is missing or unloadable.

    The right-hand side falls back to the reference model (never saw the target), then to the
    original, when the unlearned model is not built yet. Errors become notices, never tracebacks.
    """
    notices = list(config.notices)
    wanted = {"original": config.original, "unlearned": config.unlearned}
    sides: dict[str, str | None] = {}
    reference = None
    if config.reference:
        if looks_local(config.reference) and not exists_locally(config.reference):
            notices.append(f"Reference model not found at {config.reference}; "
                           "the report runs without forget quality.")
        else:
            reference = _try_load(store, config.reference, "reference", notices)
    for side in SIDES:
        name = wanted[side]
        if not name:
            sides[side] = None
            notices.append(f"No {side} model configured.")
            continue
        if looks_local(name) and not exists_locally(name):
            sides[side] = None
            notices.append(f"{SIDE_LABELS[side]} model not found at `{name}`.")
        else:
            sides[side] = _try_load(store, name, side, notices)
    if sides["unlearned"] is None:
        fallback = reference or sides["original"]
        if fallback:
            what = "the reference model (never saw the target)" if fallback == reference \
                else "the original model"
            notices.append(f"The right-hand side shows {what} instead of an unlearned model: "
                           "build one with `python -m unlearn whp ...` or in the Finetune tab.")
            sides["unlearned"] = fallback
            return Startup(sides, reference, notices,
                           "Reference" if fallback == reference else "Original")
    return Startup(sides, reference, notices)


def _try_load(store: ModelStore, name: str, role: str, notices: list[str]) -> str | None:
    try:
        return store.get(name, pin=True).name
    except ModelLoadError as exc:
        log.error("%s model: %s", role, exc)
        notices.append(f"{SIDE_LABELS[role]} model could not be loaded: {exc}")
        return None
