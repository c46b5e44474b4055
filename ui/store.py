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
import time
from collections import OrderedDict
from collections.abc import Callable
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
LOADER_THREAD = "whp-model-loader"  # the thread that loads the start-up models
READY_LOG = "start-up models loaded"  # logged once they are (ui.testing.launch_app waits for it)
SIDE_LABELS = {"original": "Original", "unlearned": "Unlearned", "reference": "Reference"}


@dataclass
class Loaded:
    """A loaded model and its tokenizer."""

    name: str
    model: Any
    tokenizer: Any


class ModelsLoading(ModelLoadError):
    """The start-up models are still loading (the app serves its page before they are ready)."""


class ModelStore:
    """Thread-safe LRU cache of loaded models keyed by path/hub id.

    While the start-up models load in the background (`start_in_background`) `get` raises
    `ModelsLoading` with a clear message instead of waiting behind the loader."""

    def __init__(self, device: str = "cpu", dtype: str = "auto", quantization: str = "none",
                 max_models: int = 5):
        self.kwargs = {"device": device, "dtype": dtype, "quantization": quantization}
        self.max_models = max_models
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._pinned: set[str] = set()
        self._lock = threading.RLock()  # re-entered: an adapter loads its base first
        self.ready = threading.Event()  # cleared while the start-up models load
        self.ready.set()
        self._loading_since = 0.0

    def get(self, name: str, pin: bool = False) -> Loaded:
        """The loaded model `name`; loads it on first use. Raises `ModelLoadError`
        (`ModelsLoading` while the start-up models are still loading)."""
        if not self.ready.is_set() and threading.current_thread().name != LOADER_THREAD:
            raise ModelsLoading(f"The models are still loading ({self.loading_seconds():.0f} s "
                                "so far): try again in a moment.")
        return self._get(name, pin)

    def loading_seconds(self) -> float:
        return time.monotonic() - self._loading_since

    def _get(self, name: str, pin: bool = False) -> Loaded:
        key = normalise(name)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            try:
                base = adapter_base(key)
                if base is not None:  # a LoRA adapter: on the (shared) base's weights
                    under = self._get(base, pin=pin)
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


def start_models(config: AppConfig, store: ModelStore | None) -> Startup:
    """Load the configured models, falling back with a notice when one is missing or unloadable.

    The right-hand side falls back to the reference model (never saw the target), then to the
    original, when the unlearned model is not built yet. Errors become notices, never tracebacks.
    With `store=None` nothing is loaded: the plan the page is built from while the models load
    (`start_in_background`), assuming every model that is found loads.
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


def start_in_background(config: AppConfig, store: ModelStore,
                        on_ready: Callable[[Startup], None]) -> threading.Thread:
    """Load the start-up models in a daemon thread, during which `store.get` says the models
    are loading; `on_ready(startup)` gets the result. Build the page from
    `start_models(config, None)` meanwhile."""
    store.ready.clear()
    store._loading_since = time.monotonic()

    def load() -> None:
        try:
            startup = start_models(config, store)
        except Exception as exc:  # noqa: BLE001 - a loader crash must not leave the app waiting
            log.exception("loading the start-up models failed")
            startup = Startup({side: None for side in SIDES}, None,
                              [*config.notices, f"Loading the models failed: {exc}"])
        log.info("%s in %.1f s", READY_LOG, store.loading_seconds())
        try:
            on_ready(startup)
        finally:
            store.ready.set()

    thread = threading.Thread(target=load, name=LOADER_THREAD, daemon=True)
    thread.start()
    return thread


def _try_load(store: ModelStore | None, name: str, role: str,
              notices: list[str]) -> str | None:
    if store is None:
        return normalise(name)
    try:
        return store.get(name, pin=True).name
    except ModelLoadError as exc:
        log.error("%s model: %s", role, exc)
        notices.append(f"{SIDE_LABELS[role]} model could not be loaded: {exc}")
        return None
