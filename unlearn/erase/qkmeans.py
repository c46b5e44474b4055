"""Quantized k-means (Ginart et al. 2019) with certified deletion, as ERASE uses it.

The selection is a deterministic function A(D, seed) of the alive examples and a seed, built so
that removing an example which is neither a k-means++ seed nor a chosen prompt example can be
checked in O(T * k * d) time, independent of n:

- k-means++ seeding is an *exponential race*: example i draws E_i ~ Exp(1) from a hash of
  (seed, its id, round) and the next seed is argmin E_i / D(i)^2. That samples exactly the D^2
  distribution, and since each example's draw is its own, deleting a non-seed leaves the seeds
  unchanged.
- T Lloyd iterations; after each, every centroid is quantized to an eps-grid with a fresh uniform
  phase per dimension (drawn from the seed only):
  q(c) = (round(c/eps + phase - 1/2) - phase + 1/2) * eps.
  A cluster smaller than the balance floor f = gamma * n / k is blended with its previous
  quantized centroid: c = (S + (f - m) q_prev) / f.
- The prompt: for each final quantized centroid in seeding order, the nearest alive example not
  already chosen.

If the grid indices of every iteration are unchanged after removing x (the certificate), every
later assignment is unchanged too (by induction), so the state equals a fresh run on D \\ {x} with
the same seed. Otherwise we recompute on D \\ {x} with the same seed. Either way the deployed
state is exactly A(D \\ {x}, seed), a fresh draw of the algorithm on the reduced data.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class QKMeansConfig:
    k: int = 8  # number of clusters = number of prompt examples
    eps: float = 0.5  # quantization grid step; larger = fewer recomputes, coarser centroids
    iters: int = 10  # Lloyd iterations T
    gamma: float = 0.2  # balance floor: clusters below gamma*n/k are blended (Ginart's 0.2)
    seed: int = 0  # all random draws (seeding race, grid phases) derive from it

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        if self.iters < 1:
            raise ValueError(f"iters must be >= 1, got {self.iters}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")


# ---------------------------------------------------------------- random draws

def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on uint64 (wrap-around arithmetic is intended)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return x ^ (x >> np.uint64(31))


def id_keys(ids: list[str]) -> np.ndarray:
    """A stable 64-bit key per example id (independent of its position in the dataset)."""
    digest = [hashlib.blake2b(str(i).encode(), digest_size=8).digest() for i in ids]
    return np.array([int.from_bytes(b, "little") for b in digest], dtype=np.uint64)


def example_exponentials(keys: np.ndarray, seed: int, round_: int) -> np.ndarray:
    """E_i ~ Exp(1), one per example, a pure function of (seed, example key, round)."""
    salt = _splitmix64(np.array([seed * 1_000_003 + round_], dtype=np.uint64))
    bits = _splitmix64(keys ^ salt)
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53  # (n,) in (0, 1)
    return -np.log(u)


def grid_phases(seed: int, iters: int, dim: int) -> np.ndarray:
    """Uniform phase per dimension per iteration, (T, d); depends on the seed only."""
    return np.random.default_rng([seed, 0x9E37]).random((iters, dim))


# ---------------------------------------------------------------- pure steps

def kmeanspp_race(x: np.ndarray, keys: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ seeding by exponential race. x (n, d) -> seed row indices (k,)."""
    n = len(x)
    chosen: list[int] = []
    d2 = np.full(n, np.inf)
    for r in range(k):
        e = example_exponentials(keys, seed, r)
        if r == 0:
            score = e
        else:
            d2 = np.minimum(d2, ((x - x[chosen[-1]]) ** 2).sum(axis=1))
            with np.errstate(divide="ignore"):
                score = np.where(d2 > 0, e / d2, np.inf)
            if not np.isfinite(score).any():  # every example sits on a seed: race among the rest
                score = e.copy()
            score[chosen] = np.inf
        chosen.append(int(np.argmin(score)))
    return np.array(chosen, dtype=np.int64)


def floored_centroids(sums: np.ndarray, sizes: np.ndarray, previous: np.ndarray,
                      floor: float) -> np.ndarray:
    """(S + (f - m)^+ q_prev) / max(m, f): small clusters are pulled to their previous centre."""
    denom = np.maximum(sizes.astype(np.float64), floor)  # (k,)
    pull = (denom - sizes)[:, None] * previous
    out = previous.copy()
    ok = denom > 0
    out[ok] = (sums[ok] + pull[ok]) / denom[ok, None]
    return out


def quantize(c: np.ndarray, phase: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (k, d) -> (integer grid indices (k, d), quantized centroids (k, d))."""
    shift = phase - 0.5
    grid = np.round(c / eps + shift).astype(np.int64)
    return grid, (grid - shift) * eps


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row. x (n, d), centres (k, d) -> (n,)."""
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None, :]
    return np.argmin(d2, axis=1)


def distinct_nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each centre in order, the nearest row of x not already taken (k <= n)."""
    taken: list[int] = []
    for c in centres:
        d2 = ((x - c) ** 2).sum(1)
        d2[taken] = np.inf
        taken.append(int(np.argmin(d2)))
    return np.array(taken, dtype=np.int64)


# ---------------------------------------------------------------- the state

@dataclass
class DeletionRecord:
    ids: list[str]
    action: str  # "certified" or "recompute"
    reason: str
    operations: int  # floating-point multiply-adds, roughly
    seconds: float


@dataclass
class QKMeansState:
    """Everything a certified deletion needs. Row positions index `ids`; dead rows stay in place."""

    config: QKMeansConfig
    ids: list[str]
    x: np.ndarray  # (N, d) float64 embeddings, dead rows included
    alive: np.ndarray  # (N,) bool
    seeds: np.ndarray  # (k,) row positions
    assign: np.ndarray  # (T, N) int32 cluster of each row per iteration (-1 when dead)
    sums: np.ndarray  # (T, k, d) per-iteration cluster sums
    sizes: np.ndarray  # (T, k) per-iteration cluster sizes
    grids: np.ndarray  # (T, k, d) int64 grid indices of the quantized centroids
    phases: np.ndarray  # (T, d)
    prompt: np.ndarray  # (k,) row positions of the chosen examples, in centroid order
    log: list[DeletionRecord] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)  # id -> row, filled in __post_init__

    def __post_init__(self) -> None:
        if not self.position:
            self.position = {i: p for p, i in enumerate(self.ids)}

    @property
    def n(self) -> int:
        return int(self.alive.sum())

    def quantized(self, t: int) -> np.ndarray:
        """Quantized centroids of iteration t; t = -1 means the seed points."""
        if t < 0:
            return self.x[self.seeds]
        return (self.grids[t] - (self.phases[t] - 0.5)) * self.config.eps

    def prompt_ids(self) -> list[str]:
        return [self.ids[i] for i in self.prompt]

    def seed_ids(self) -> list[str]:
        return [self.ids[i] for i in self.seeds]

    def not_alive(self, example_ids: list[str]) -> list[str]:
        """The ids that are unknown or already deleted (what `delete` refuses)."""
        return [i for i in example_ids
                if i not in self.position or not self.alive[self.position[i]]]


def fit(x: np.ndarray, ids: list[str], config: QKMeansConfig,
        alive: np.ndarray | None = None) -> QKMeansState:
    """Run Q-k-means on the alive rows of x (N, d); returns the full per-iteration state."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(ids):
        raise ValueError(f"need x of shape (len(ids), d), got {x.shape} for {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise ValueError("example ids must be unique")
    alive = np.ones(len(x), bool) if alive is None else alive.copy()
    rows = np.flatnonzero(alive)
    k, n, big_t = config.k, len(rows), config.iters
    if n < k:
        raise ValueError(f"need at least k={k} examples, have {n}")
    xa = x[rows]
    keys = id_keys([ids[i] for i in rows])
    seeds = rows[kmeanspp_race(xa, keys, k, config.seed)]
    phases = grid_phases(config.seed, big_t, x.shape[1])
    floor = config.gamma * n / k
    assign = np.full((big_t, len(x)), -1, dtype=np.int32)
    sums = np.zeros((big_t, k, x.shape[1]))
    sizes = np.zeros((big_t, k), dtype=np.int64)
    grids = np.zeros((big_t, k, x.shape[1]), dtype=np.int64)
    previous = x[seeds]
    for t in range(big_t):
        a = nearest(xa, previous)
        assign[t, rows] = a
        sizes[t] = np.bincount(a, minlength=k)
        np.add.at(sums[t], a, xa)
        c = floored_centroids(sums[t], sizes[t], previous, floor)
        grids[t], previous = quantize(c, phases[t], config.eps)
    prompt = rows[distinct_nearest(xa, previous)]
    return QKMeansState(config, list(ids), x, alive, seeds, assign, sums, sizes, grids, phases,
                        prompt)


def certify(state: QKMeansState, rows: np.ndarray) -> tuple[bool, str, int]:
    """Would removing `rows` leave every iteration's grid indices unchanged? O(T (k + |B|) d)."""
    cfg = state.config
    floor = cfg.gamma * (state.n - len(rows)) / cfg.k
    ops = 0
    for t in range(cfg.iters):
        clusters = state.assign[t, rows]
        sums = state.sums[t].copy()
        np.subtract.at(sums, clusters, state.x[rows])
        sizes = state.sizes[t] - np.bincount(clusters, minlength=cfg.k)
        c = floored_centroids(sums, sizes, state.quantized(t - 1), floor)
        grid, _ = quantize(c, state.phases[t], cfg.eps)
        ops += (cfg.k + len(rows)) * state.x.shape[1]
        if not np.array_equal(grid, state.grids[t]):
            return False, f"centroid moved to another grid point at iteration {t}", ops
    return True, "all iterations quantize to the same grid points", ops


def delete(state: QKMeansState, example_ids: list[str] | str) -> DeletionRecord:
    """Exactly unlearn one or more examples, in place; returns the log record.

    Cost: a dictionary lookup and O(T (k + |B|) d) for a certified deletion (never O(n)); a full
    `fit` on the remaining rows when the certificate fails or a seed / prompt example goes.
    Use `copy.deepcopy(state)` first to keep the old state.
    """
    example_ids = [example_ids] if isinstance(example_ids, str) else list(example_ids)
    if not example_ids:
        raise ValueError("no example ids to delete")
    if len(set(example_ids)) != len(example_ids):
        raise ValueError("duplicate ids in one deletion request")
    missing = state.not_alive(example_ids)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise KeyError(f"not an alive training example (unknown or already deleted): "
                       f"{', '.join(missing[:5])}{more}")
    rows = np.array([state.position[i] for i in example_ids], dtype=np.int64)
    if state.n - len(rows) < state.config.k:
        raise ValueError(f"deleting would leave fewer than k={state.config.k} examples")
    start = time.perf_counter()
    special = set(state.seeds.tolist()) | set(state.prompt.tolist())
    if special & set(rows.tolist()):
        ok, reason, ops = False, "a deleted example is a k-means++ seed or a prompt example", 0
    else:
        ok, reason, ops = certify(state, rows)
    if ok:
        _remove_rows(state, rows)
        action = "certified"
    else:
        alive = state.alive.copy()
        alive[rows] = False
        fresh = fit(state.x, state.ids, state.config, alive)
        for name in ("alive", "seeds", "assign", "sums", "sizes", "grids", "prompt"):
            setattr(state, name, getattr(fresh, name))
        ops += state.config.iters * state.n * state.config.k * state.x.shape[1]
        action = "recompute"
    record = DeletionRecord(example_ids, action, reason, ops, time.perf_counter() - start)
    state.log.append(record)
    return record


def _remove_rows(state: QKMeansState, rows: np.ndarray) -> None:
    """Remove rows from the stored sums and sizes; seeds, grids and prompt stay as they are."""
    for t in range(state.config.iters):
        clusters = state.assign[t, rows]
        np.subtract.at(state.sums[t], clusters, state.x[rows])
        np.subtract.at(state.sizes[t], clusters, 1)
    state.assign[:, rows] = -1
    state.alive[rows] = False


def same_selection(a: QKMeansState, b: QKMeansState) -> bool:
    """Equal as outputs of the algorithm: seeds, grid points, cluster sizes and prompt (by id)."""
    return (a.seed_ids() == b.seed_ids() and a.prompt_ids() == b.prompt_ids()
            and np.array_equal(a.grids, b.grids) and np.array_equal(a.sizes, b.sizes))


def log_as_dicts(state: QKMeansState) -> list[dict]:
    return [asdict(r) for r in state.log]
