"""Neighbour side effects: the same measures on the neighbour saga, as change vs the original."""

from __future__ import annotations

NEIGHBOUR_SCORES = ("neighbour_probability_familiarity", "neighbour_trivia_accuracy",
                    "neighbour_completion_familiarity")


def baseline_name(names: list[str]) -> str:
    """The model deltas are measured against: `original` if present, else the first."""
    if not names:
        raise ValueError("no models")
    return "original" if "original" in names else names[0]


def score_deltas(scores: dict[str, dict[str, float | None]], baseline: str,
                 keys: tuple[str, ...] = NEIGHBOUR_SCORES) -> dict[str, dict[str, float | None]]:
    """`{model: {key: score - baseline score}}` for every model (None when either is missing)."""
    base = scores[baseline]
    out: dict[str, dict[str, float | None]] = {}
    for name, sc in scores.items():
        out[name] = {}
        for k in keys:
            a, b = sc.get(k), base.get(k)
            out[name][k] = None if a is None or b is None else float(a) - float(b)
    return out
