"""Q-k-means deletion is exact: after any deletions the state is a fresh run on what is left."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.erase.qkmeans import (
    QKMeansConfig,
    delete,
    example_exponentials,
    fit,
    floored_centroids,
    id_keys,
    quantize,
    same_selection,
)


def _data(seed: int, n: int, d: int, blobs: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(blobs, d))
    x = centres[rng.integers(blobs, size=n)] + rng.normal(size=(n, d))
    return x, [f"ex-{seed}-{i}" for i in range(n)]


def _fresh(state):
    return fit(state.x, state.ids, state.config, state.alive)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(12, 120), d=st.integers(1, 4),
       k=st.integers(1, 5), eps=st.sampled_from([0.05, 0.3, 1.0, 3.0]),
       gamma=st.sampled_from([0.0, 0.2, 0.5]), batch=st.integers(1, 3), steps=st.integers(1, 8))
def test_state_after_deletions_is_a_fresh_run(seed, n, d, k, eps, gamma, batch, steps):
    x, ids = _data(seed, n, d, blobs=3)
    state = fit(x, ids, QKMeansConfig(k=k, eps=eps, iters=4, gamma=gamma, seed=seed % 7))
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        alive = [ids[i] for i in np.flatnonzero(state.alive)]
        if len(alive) - batch < k:
            break
        victims = list(rng.choice(alive, size=batch, replace=False))
        before = copy.deepcopy(state)
        reduced = before.alive.copy()
        reduced[[before.position[v] for v in victims]] = False
        expected = fit(x, ids, before.config, reduced)  # a fresh run on D minus victims, same draws
        record = delete(state, victims)
        assert same_selection(state, expected)
        np.testing.assert_allclose(state.sums, expected.sums, atol=1e-9)
        assert (state.assign == expected.assign).all()
        # a recompute happens exactly when the old output is not the reduced run's output
        old_output_still_valid = (before.seed_ids() == expected.seed_ids()
                                  and before.prompt_ids() == expected.prompt_ids()
                                  and np.array_equal(before.grids, expected.grids))
        assert (record.action == "certified") == old_output_still_valid, record.reason


def test_seed_or_prompt_deletion_recomputes_and_others_usually_certify():
    x, ids = _data(3, 2000, 4, blobs=4)
    state = fit(x, ids, QKMeansConfig(k=4, eps=2.0, iters=5))
    chosen = state.prompt_ids()[0]
    record = delete(state, chosen)
    assert record.action == "recompute" and chosen not in state.prompt_ids()
    others = [i for i in ids if i not in state.prompt_ids() and i not in state.seed_ids()][:50]
    actions = [delete(state, i).action for i in others]
    assert actions.count("certified") >= 45  # 1/n-ish recompute rate on 2000 points
    assert same_selection(state, _fresh(state))
    assert len(state.log) == 51


def test_seeding_race_ignores_other_examples():
    keys = id_keys(["a", "b", "c"])
    e_all = example_exponentials(keys, seed=5, round_=2)
    e_two = example_exponentials(keys[[0, 2]], seed=5, round_=2)
    assert e_all[[0, 2]].tolist() == e_two.tolist()  # a draw belongs to its example, not a slot
    assert (e_all > 0).all()


def test_floor_and_quantization_by_hand():
    sums = np.array([[4.0, 0.0], [1.0, 1.0]])
    sizes = np.array([4, 1])
    prev = np.array([[0.0, 0.0], [3.0, 3.0]])
    c = floored_centroids(sums, sizes, prev, floor=2.0)
    # cluster 0 is above the floor: mean; cluster 1 (size 1 < 2) gets one unit of its old centre
    np.testing.assert_allclose(c, [[1.0, 0.0], [2.0, 2.0]])
    grid, q = quantize(np.array([[0.26, -0.74]]), phase=np.array([0.5, 0.0]), eps=0.5)
    # phase 0.5: grid points at multiples of 0.5; phase 0: grid points shifted by eps/2
    assert grid.tolist() == [[1, -2]]
    np.testing.assert_allclose(q, [[0.5, -0.75]])  # nearest of -0.75, -0.25


def test_bad_requests_are_clear_errors():
    x, ids = _data(0, 20, 2, blobs=2)
    state = fit(x, ids, QKMeansConfig(k=3))
    with pytest.raises(KeyError, match="not an alive"):
        delete(state, "nope")
    with pytest.raises(ValueError, match="duplicate"):
        delete(state, [ids[0], ids[0]])
    with pytest.raises(ValueError, match="at least k"):
        fit(x[:2], ids[:2], QKMeansConfig(k=3))
    with pytest.raises(ValueError, match="eps"):
        QKMeansConfig(eps=0)
