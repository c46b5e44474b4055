"""Adapt a `gr.Progress` to the libraries' `on_progress(done, total, message)` callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

Progress = Callable[[int, int, str], None]


def progress_callback(progress, label: str, start: float = 0.0, span: float = 1.0) -> Progress:
    """A callback that maps `done/total` of one sub-task onto `[start, start + span]`."""

    def on_progress(done: int, total: int, message: str = "") -> None:
        frac = start + span * (done / total if total else 1.0)
        with contextlib.suppress(Exception):  # progress is cosmetic: never fail a task over it
            progress(min(frac, 1.0), desc=f"{label}: {message} {done}/{total}".strip())

    return on_progress


def split(progress, labels: list[str]) -> list[Progress]:
    """One callback per sub-task, each covering an equal share of the bar."""
    n = max(len(labels), 1)
    return [progress_callback(progress, lab, i / n, 1 / n) for i, lab in enumerate(labels)]
