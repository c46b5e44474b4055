"""The one adapter from the libraries' progress events (`unlearn.runtime.Progress`) to a bar.

`bar` is a `gr.Progress`, or anything with its `(fraction, desc=...)` signature: the event
stream of `ui.gpu_tasks` (`_with_progress`) hands its tasks such a sink, so every task reports
through this adapter on either side of the process boundary.
"""

from __future__ import annotations

import contextlib

from unlearn.runtime import Progress, ProgressFn


def fraction(event: Progress, start: float = 0.0, span: float = 1.0) -> float:
    """`step/total` of `event` mapped onto `[start, start + span]` (total 0: done; total None,
    i.e. unknown: still at `start`)."""
    if event.total is None:
        return min(start, 1.0)
    return min(start + span * (event.step / event.total if event.total else 1.0), 1.0)


def describe(event: Progress, label: str) -> str:
    """`"<label>: <message> <step>/<total>"` (the parts that are there; no count when the total
    is unknown)."""
    count = f"{event.step}/{event.total}" if event.total is not None else ""
    body = " ".join(p for p in (event.message, count) if p)
    return f"{label}: {body}" if label else body


def progress_callback(bar, label: str, start: float = 0.0, span: float = 1.0) -> ProgressFn:
    """A `ProgressFn` that moves `bar` over `[start, start + span]` as one sub-task advances."""

    def on_progress(event: Progress) -> None:
        with contextlib.suppress(Exception):  # progress is cosmetic: never fail a task over it
            bar(fraction(event, start, span), desc=describe(event, label))

    return on_progress
