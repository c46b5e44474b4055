"""One error boundary around every event handler, and checks on every raw input.

`install(demo, ...)` runs once on the built Blocks (not in each handler):
- every handler is wrapped: expected problems (bad input, a limit, a model that cannot load, a
  malformed file) become a short `gr.Error`; anything else is logged here with a trace id and
  the visitor sees "internal error (id)", never the exception's text; server paths are scrubbed
  from every message;
- the raw payload of each input is checked before Gradio preprocesses it (numbers finite and
  within `FIELD_BOUNDS`, text and table sizes), and a payload Gradio itself cannot read is a
  short message too;
- a failure of Gradio's own call setup (event data missing from an API call) is a message too;
- an optional `admit(endpoint, args, request)` hook (public mode: operator gate, rate limits)
  runs before the handler; it gets the `gr.Request` the wrapper asks Gradio for.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gradio as gr

from ui.limits import (
    MAX_CELL_CHARS,
    MAX_TABLE_COLS,
    MAX_TABLE_ROWS,
    MAX_TEXT_CHARS,
    LimitError,
    bound_for,
)

log = logging.getLogger("app.guard")
MESSAGE_MAX = 600  # characters of an error message shown to a visitor
CHOICE_MAX = 1_000  # characters of a dropdown / radio value (free-text dropdowns are paths)
Admit = Callable[[str, tuple, Any], None]


def expected_types() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user (the libraries' own error types)."""
    from audits.errors import AuditError
    from unlearn.anchors import AnchorError
    from unlearn.models import ModelLoadError

    return (LimitError, AuditError, AnchorError, ModelLoadError)


def scrub(text: str, roots: Iterable[tuple[str, str]]) -> str:
    """`text` with every server path in `roots` (`(path, shown as)`) replaced, shortened."""
    for path, shown in sorted(roots, key=lambda r: -len(r[0])):
        if path and len(path) > 1:
            text = text.replace(path, shown)
    text = re.sub(r"(?<![\w.])/(?:[\w.+-]+/)+", "", text)  # any other absolute folder
    return text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX] + "..."


def friendly(exc: BaseException) -> str | None:
    """The user-facing message of an expected problem, None for an internal error."""
    if isinstance(exc, gr.Error):
        return str(exc.message)
    if isinstance(exc, expected_types()):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "The file is not UTF-8 text."
    if isinstance(exc, RecursionError):
        return "The input is nested too deeply."
    if isinstance(exc, json.JSONDecodeError):
        return f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return "A file or folder name is too long."
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return "No such file or folder."
    return None


class Boundary:
    """Turns exceptions into messages fit for a visitor (see the module docstring)."""

    def __init__(self, roots: Iterable[tuple[str, str]] = (), admit: Admit | None = None):
        self.roots = list(roots)
        self.admit = admit

    def to_error(self, exc: BaseException, endpoint: str) -> gr.Error:
        message = friendly(exc)
        if message is None:
            trace = uuid.uuid4().hex[:8]
            log.error("internal error %s in %s", trace, endpoint, exc_info=exc)
            message = f"Internal error ({trace}); the server logged it."
        title = exc.title if isinstance(exc, gr.Error) else "Error"
        return gr.Error(scrub(message, self.roots), title=title, print_exception=False)

    def wrap(self, fn: Callable, endpoint: str) -> Callable:
        """`fn` inside the boundary, same kind (function, generator, async), same parameters
        plus a trailing `gr.Request` that Gradio fills in and the wrapper takes off again (not
        for handlers with *args or keyword-only parameters: those get no request)."""
        admit, to_error = self.admit, self.to_error
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        # a trailing request parameter is only possible after plain positional parameters
        plain = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

        def before(args: tuple) -> tuple:
            request = None
            if plain:
                args, request = args[:-1], args[-1]
            if admit is not None:
                try:
                    admit(endpoint, args, request)
                except Exception as exc:  # noqa: BLE001 - refusals are messages too
                    raise to_error(exc, endpoint) from None
            return args

        if inspect.isasyncgenfunction(fn):
            async def wrapper(*args, **kwargs):
                args = before(args)
                try:
                    async for item in fn(*args, **kwargs):
                        yield item
                except Exception as exc:  # noqa: BLE001 - the boundary
                    raise to_error(exc, endpoint) from None
        elif inspect.iscoroutinefunction(fn):
            async def wrapper(*args, **kwargs):
                args = before(args)
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the boundary
                    raise to_error(exc, endpoint) from None
        elif inspect.isgeneratorfunction(fn):
            def wrapper(*args, **kwargs):
                args = before(args)
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the boundary
                    raise to_error(exc, endpoint) from None
        else:
            def wrapper(*args, **kwargs):
                args = before(args)
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the boundary
                    raise to_error(exc, endpoint) from None

        functools.update_wrapper(wrapper, fn)
        if plain:
            request = inspect.Parameter("whp_request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=None, annotation=gr.Request)
            wrapper.__signature__ = sig.replace(parameters=[*params, request])
            wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}),
                                       "whp_request": gr.Request}
        wrapper._whp_guarded = True
        return wrapper


def check_payload(block, value) -> None:
    """Raise `LimitError` if a raw input payload is out of bounds for its component."""
    label = getattr(block, "label", None) or type(block).__name__
    if isinstance(block, (gr.Number, gr.Slider)):
        if value is None and isinstance(block, gr.Number):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LimitError(f"{label} must be a number.")
        if not math.isfinite(value):
            raise LimitError(f"{label} must be a finite number.")
        bound = bound_for(label)
        if bound is not None:
            bound.check(label, value)
    elif isinstance(block, gr.Textbox):
        if value is not None and not isinstance(value, str):
            raise LimitError(f"{label} must be text.")
        if value is not None and len(value) > MAX_TEXT_CHARS:
            raise LimitError(f"{label} is too long: {len(value):,} characters, at most "
                             f"{MAX_TEXT_CHARS:,}.")
    elif isinstance(block, (gr.Dropdown, gr.Radio, gr.CheckboxGroup)):
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_TABLE_COLS * 10:
            raise LimitError(f"{label}: too many values ({len(items):,}).")
        if any(isinstance(v, str) and len(v) > CHOICE_MAX for v in items):
            raise LimitError(f"{label}: value too long (at most {CHOICE_MAX:,} characters).")
    elif isinstance(block, gr.Dataframe) and isinstance(value, dict):
        rows = value.get("data")
        if rows is None:
            return
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise LimitError(f"{label}: the table must be a list of rows.")
        if len(rows) > MAX_TABLE_ROWS or any(len(r) > MAX_TABLE_COLS for r in rows):
            raise LimitError(f"{label}: at most {MAX_TABLE_ROWS} rows of {MAX_TABLE_COLS} "
                             "columns.")
        for row in rows:
            for cell in row:
                if isinstance(cell, (dict, list)):
                    raise LimitError(f"{label}: cells must be text or numbers.")
                if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
                    raise LimitError(f"{label}: a cell has {len(cell):,} characters, at most "
                                     f"{MAX_CELL_CHARS:,}.")


def install(demo: gr.Blocks, roots: Iterable[tuple[str, str]] = (),
            admit: Admit | None = None) -> Boundary:
    """Put every event handler of `demo` inside one `Boundary`, and check raw inputs."""
    boundary = Boundary(roots, admit)
    for block_fn in demo.fns.values():
        if block_fn.fn is None or getattr(block_fn.fn, "_whp_guarded", False):
            continue
        block_fn.fn = boundary.wrap(block_fn.fn, block_fn.api_name or block_fn.name or "fn")
    original = demo.preprocess_data

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        endpoint = block_fn.api_name or block_fn.name or "fn"
        try:
            for block, value in zip(block_fn.inputs, inputs or [], strict=False):
                check_payload(block, value)
            return await original(block_fn, inputs, state, explicit_call)
        except (gr.Error, LimitError) as exc:  # Gradio's own messages may echo the value
            raise boundary.to_error(exc, endpoint) from None
        except Exception as exc:  # noqa: BLE001 - Gradio could not read a payload
            log.warning("unreadable input to %s: %s: %s", endpoint, type(exc).__name__,
                        str(exc)[:300])
            raise gr.Error("An input of this request cannot be read: check its type and "
                           "format.", print_exception=False) from None

    demo.preprocess_data = preprocess_data
    call_original = demo.call_function

    async def call_function(block_fn, *args, **kwargs):
        # the handler itself is wrapped; what fails here is Gradio's own setup of the call
        # (event data of a click sent through the API without one, a wrong argument count)
        try:
            return await call_original(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - before the handler ran
            name = getattr(block_fn, "api_name", None) or getattr(block_fn, "name", "fn")
            log.warning("call of %s refused: %s: %s", name, type(exc).__name__, str(exc)[:300])
            raise gr.Error("This action cannot be called this way: it needs the page's own "
                           "event data (for example a click on a table).",
                           print_exception=False) from None

    demo.call_function = call_function
    return boundary


def server_roots(*paths: str | Path) -> list[tuple[str, str]]:
    """`(path, shown as)` pairs for `scrub`: each folder (and its resolved form) by its name."""
    out = []
    for p in paths:
        if not p:
            continue
        for form in {str(p), str(Path(p).resolve())}:
            out.append((form.rstrip("/") + "/", ""))
            out.append((form.rstrip("/"), Path(p).name or "."))
    return out
