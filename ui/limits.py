"""Bounds on what a visitor can make the server do: input sizes, prompt length, request rates.

Gradio-free (the GPU side and the benchmark use it too); `ui/guard.py` turns a `LimitError` into
the short message a visitor sees. One place for every bound, so the docs and the tests read
the same numbers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SEED_MAX = 2**32 - 1  # torch and numpy seeds: 0..2**32-1
MAX_TEXT_CHARS = 100_000  # any text field; prompts are bounded further by the model's context
CHARS_PER_TOKEN_MAX = 32  # a prompt longer than this many chars per context token cannot fit
MAX_TABLE_ROWS = 2_000  # dictionary / candidate tables
MAX_TABLE_COLS = 12
MAX_CELL_CHARS = 2_000
MAX_UPLOAD_MB = 5  # gradio's max_file_size (bytes checked again after the upload)
MAX_PROBES = 200  # probes per Completion probes run
MAX_CONTINUATIONS = 20  # chosen continuations in Token probabilities
DEFAULT_CONTEXT = 2048  # a model config without max_position_embeddings


class LimitError(ValueError):
    """A visitor's input is outside what the app accepts; the message says what is allowed."""


@dataclass(frozen=True)
class NumberBound:
    """Bounds of a numeric field; `low_open`: the lower bound itself is excluded."""

    low: float
    high: float
    low_open: bool = False
    integer: bool = False

    def check(self, name: str, value) -> None:
        """Raise `LimitError` unless `value` is a finite number within the bounds."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LimitError(f"{name} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise LimitError(f"{name} must be a finite number")
        below = value <= self.low if self.low_open else value < self.low
        if below or value > self.high:
            lo = "(" if self.low_open else "["
            raise LimitError(f"{name} must be in {lo}{_num(self.low)}, {_num(self.high)}], "
                             f"got {_num(value)}")
        if self.integer and value != int(value):
            raise LimitError(f"{name} must be a whole number, got {_num(value)}")


def _num(x: float) -> str:
    """Whole numbers in full (4294967295), others short (1e+300, 0.001)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


# numeric fields by the start of their label (lower case): the UI's fields are checked with these
FIELD_BOUNDS: dict[str, NumberBound] = {
    "seed": NumberBound(0, SEED_MAX, integer=True),
    "learning rate": NumberBound(0, 1, low_open=True),
}


def bound_for(label: str | None) -> NumberBound | None:
    """The `FIELD_BOUNDS` entry whose key starts the label (case-insensitive), if any."""
    text = (label or "").strip().lower()
    return next((b for key, b in FIELD_BOUNDS.items() if text.startswith(key)), None)


def check_text(name: str, text: str | None, limit: int = MAX_TEXT_CHARS) -> None:
    if text is not None and len(text) > limit:
        raise LimitError(f"{name} is too long: {len(text):,} characters, at most {limit:,}")


def context_length(model, default: int = DEFAULT_CONTEXT) -> int:
    """Positions the model can attend to (`config.max_position_embeddings`)."""
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", None) or default)


def prompt_budget(context: int, new_tokens: int) -> int:
    """Prompt tokens that fit: the context minus the tokens to generate (at least 1 needed)."""
    return max(0, int(context) - max(0, int(new_tokens)))


def _no_room(context: int, new_tokens: int) -> None:
    """New tokens alone fill the context: say which setting to lower."""
    if prompt_budget(context, new_tokens) <= 0:
        raise LimitError(f"Max new tokens ({new_tokens:,}) fills this model's whole context "
                         f"({context:,} positions) and leaves no room for the prompt: lower it "
                         f"to {context:,} minus the prompt's length in tokens or less (a "
                         f"one-line prompt leaves room for about {max(1, context - 32):,}).")


def check_prompt_chars(text: str, context: int, new_tokens: int) -> None:
    """Cheap first check, before tokenizing: a prompt of more than `CHARS_PER_TOKEN_MAX`
    characters per available position cannot fit whatever the tokenizer does."""
    budget = prompt_budget(context, new_tokens)
    check_text("The prompt", text)
    _no_room(context, new_tokens)
    if len(text) > budget * CHARS_PER_TOKEN_MAX:
        raise LimitError(f"The prompt is too long for this model: {len(text):,} characters "
                         f"cannot fit in the {budget:,} token{'s' * (budget != 1)} left "
                         f"({context:,} positions minus {new_tokens:,} new tokens); lower Max "
                         "new tokens or shorten the prompt.")


def check_prompt_tokens(n_tokens: int, context: int, new_tokens: int) -> None:
    """The exact check once tokenized: prompt + new tokens must fit in the context."""
    budget = prompt_budget(context, new_tokens)
    _no_room(context, new_tokens)
    if n_tokens > budget:
        fits = context - n_tokens
        advice = (f"set Max new tokens to at most {fits:,} or shorten the prompt" if fits > 0
                  else "shorten the prompt")
        raise LimitError(f"The prompt is too long for this model: {n_tokens:,} tokens, at most "
                         f"{budget:,} ({context:,} positions minus {new_tokens:,} new tokens); "
                         f"{advice}.")


class RateLimiter:
    """At most `calls` per `per_s` seconds for each key (a sliding window); thread-safe.

    `calls <= 0` means unlimited. Keys are user names or client addresses.
    """

    def __init__(self, calls: int, per_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.calls, self.per_s = int(calls), float(per_s)
        self.clock, self.max_keys = clock, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Record a call; 0.0 if allowed, else the seconds to wait before the next one."""
        if self.calls <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            if len(self._hits) > self.max_keys:  # forget idle keys (bounded memory)
                self._hits = {k: q for k, q in self._hits.items() if q and q[-1] > now - self.per_s}
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.per_s:
                hits.popleft()
            if len(hits) >= self.calls:
                return max(0.0, hits[0] + self.per_s - now)
            hits.append(now)
            return 0.0
