"""Choosing k in-context examples: ERASE (Q-k-means), random, Auto-CoT (k-means), zero-shot."""

from __future__ import annotations

import numpy as np

from unlearn.erase.qkmeans import (
    QKMeansConfig,
    QKMeansState,
    distinct_nearest,
    fit,
    id_keys,
    kmeanspp_race,
    nearest,
)

METHODS = ("erase", "random", "autocot", "zero-shot")


def erase(x: np.ndarray, ids: list[str], config: QKMeansConfig) -> QKMeansState:
    """The ERASE selection state; its `prompt_ids()` are the chosen examples."""
    return fit(x, ids, config)


def random_ids(ids: list[str], k: int, seed: int) -> list[str]:
    """k distinct examples uniformly at random (seeded)."""
    if k > len(ids):
        raise ValueError(f"need at least k={k} examples, have {len(ids)}")
    rng = np.random.default_rng([seed, 0xA11])
    return [ids[i] for i in rng.choice(len(ids), size=k, replace=False)]


def autocot_ids(x: np.ndarray, ids: list[str], k: int, seed: int, iters: int = 50) -> list[str]:
    """Auto-CoT style: plain k-means (k-means++ start, Lloyd to convergence), nearest to centres."""
    x = np.asarray(x, dtype=np.float64)
    centres = x[kmeanspp_race(x, id_keys(ids), k, seed)]
    for _ in range(iters):
        a = nearest(x, centres)
        new = centres.copy()
        for j in range(k):
            if (a == j).any():
                new[j] = x[a == j].mean(0)
        if np.allclose(new, centres):
            break
        centres = new
    return [ids[i] for i in distinct_nearest(x, centres)]


def select_all(
    x: np.ndarray, ids: list[str], config: QKMeansConfig, methods: tuple[str, ...] = METHODS,
) -> tuple[dict[str, list[str]], QKMeansState | None]:
    """Chosen ids per method, and the ERASE state (None when "erase" is not asked for)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown selection methods {unknown}; choose from {list(METHODS)}")
    out: dict[str, list[str]] = {}
    state = None
    for m in methods:
        if m == "erase":
            state = erase(x, ids, config)
            out[m] = state.prompt_ids()
        elif m == "random":
            out[m] = random_ids(ids, config.k, config.seed)
        elif m == "autocot":
            out[m] = autocot_ids(x, ids, config.k, config.seed)
        else:
            out[m] = []
    return out, state
