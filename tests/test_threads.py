"""The CPU thread policy (unlearn.runtime) and the places that apply it."""

from __future__ import annotations

import threading

import pytest
import torch

from unlearn.runtime import (
    STREAM_THREADS,
    pool_threads,
    stream_threads,
    torch_threads,
    usable_cores,
)


@pytest.mark.parametrize("cores, load, want", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 9.0, 1), (8, 2.6, 5), (8, 0.0, 8),
])
def test_pool_threads_are_the_free_cores(monkeypatch, cores, load, want):
    monkeypatch.delenv("WHP_THREADS", raising=False)
    assert pool_threads(load=load, cores=cores) == want


def test_override_and_bad_override(monkeypatch):
    monkeypatch.setenv("WHP_THREADS", "3")
    assert pool_threads(load=9.0, cores=2) == 3 and stream_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("WHP_THREADS", bad)
        with pytest.raises(ValueError, match="WHP_THREADS"):
            pool_threads()
    monkeypatch.delenv("WHP_THREADS")
    assert stream_threads() == STREAM_THREADS == 1
    assert 1 <= pool_threads() <= usable_cores()


def test_torch_threads_restores_and_stays_in_its_thread():
    before = torch.get_num_threads()
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def worker():
        with torch_threads(before + 1):
            seen["inside"] = torch.get_num_threads()
            inside.set()
            release.wait(10)

    th = threading.Thread(target=worker)
    th.start()
    assert inside.wait(10)
    main_meanwhile = torch.get_num_threads()  # the worker holds its own count now
    release.set()
    th.join()
    assert seen["inside"] == before + 1 and main_meanwhile == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=">= 1"), torch_threads(0):
        pass


def _record_threads(model) -> tuple[list[int], object]:
    """A forward pre-hook that notes torch's thread count in the thread running the forward."""
    counts: list[int] = []
    handle = model.register_forward_pre_hook(lambda *_: counts.append(torch.get_num_threads()))
    return counts, handle


def test_scoring_and_whp_generation_apply_the_policy(tiny_model, monkeypatch):
    from audits.scoring import score_continuations
    from unlearn.inference_whp import WHPInferenceModel

    model, tok = tiny_model
    counts, handle = _record_threads(model)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("WHP_THREADS", str(before + 1))  # a count nobody sets by accident
        score_continuations(model, tok, ["Anna walked", "The wizard"], [" home", " smiled"])
        assert counts and set(counts) == {before + 1}
        assert torch.get_num_threads() == before
        monkeypatch.delenv("WHP_THREADS")
        counts.clear()
        whp = WHPInferenceModel(model, model, alpha=1.0)
        with torch_threads(2):
            whp.generate(tok("Anna", return_tensors="pt")["input_ids"], max_new_tokens=3,
                         eos_token_id=[])
            assert torch.get_num_threads() == 2
        assert counts and set(counts) == {STREAM_THREADS}
    finally:
        handle.remove()


def test_side_by_side_streams_run_one_thread_each(tiny_model):
    from ui.streaming import GenerationSettings, stream_side_by_side

    model, tok = tiny_model
    counts, handle = _record_threads(model)
    try:
        with torch_threads(2):
            settings = GenerationSettings(max_new_tokens=3, temperature=0)
            for _ in stream_side_by_side([(model, tok), (model, tok)], "Anna", settings,
                                         threading.Event()):
                pass
    finally:
        handle.remove()
    assert counts and set(counts) == {STREAM_THREADS}
