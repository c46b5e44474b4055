"""Chunked prefill: the same tokens as a plain generate; Stop during a long prompt frees it."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from ui.limits import LimitError
from ui.streaming import GenerationSettings, prefill, stream_side_by_side


@pytest.fixture(scope="module")
def long_model(tiny_tokenizer_dir):
    """A random tiny Llama with 64k positions, so that a long prompt takes seconds to prefill."""
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import TinyLlamaConfig, build_model

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    cfg = TinyLlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=2,
                          max_position_embeddings=65536)
    return build_model(cfg, tok, seed=0).eval(), tok


def test_chunked_prefill_generates_the_same_tokens(long_model):
    model, tok = long_model
    ids = tok("Mira walked to the castle with Pip. " * 40, return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 300  # more than one chunk
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        plain = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
        cache = prefill(model, ids, threading.Event(), chunk=64)
        chunked = model.generate(ids, attention_mask=torch.ones_like(ids),
                                 past_key_values=cache, **kw)
    assert cache is not None
    assert torch.equal(plain, chunked)
    assert prefill(model, ids[:, :10], threading.Event(), chunk=64) is None  # one chunk: none


def test_stop_during_a_long_prefill_frees_the_worker(long_model):
    model, tok = long_model
    prompt = "Mira walked to the castle with Pip. " * 1500  # ~15k tokens
    settings = GenerationSettings(max_new_tokens=4, temperature=0, seed=0)
    # how long the prefill takes uncancelled (one model, the same chunking)
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    t0 = time.perf_counter()
    prefill(model, ids[:, :4000], threading.Event())
    partial = time.perf_counter() - t0  # a quarter of the prompt: a lower bound of the whole
    cancel = threading.Event()
    stream = stream_side_by_side([(model, tok)], prompt, settings, cancel)
    texts: list = []
    done = threading.Event()

    def consume():
        texts.extend(stream)
        done.set()

    before = {t.name for t in threading.enumerate()}
    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.3)
    t_stop = time.perf_counter()
    cancel.set()
    assert done.wait(timeout=max(2.0, 2 * partial / 8)), "stream did not end after Stop"
    stopped_after = time.perf_counter() - t_stop
    worker.join(timeout=5)
    print(f"prefill of 4000 tokens: {partial:.2f} s; stream ended {stopped_after:.3f} s after Stop")
    assert stopped_after < partial, (stopped_after, partial)  # well before the prefill ends
    assert not texts or texts[-1] == ("",)  # no token was generated
    time.sleep(0.2)
    left = [t for t in threading.enumerate()
            if t.name.startswith("generate-pane") and t.name not in before]
    assert not left, left  # the generate thread has ended: the worker is free


def test_a_prompt_longer_than_the_context_is_refused_before_any_work(tiny_model):
    model, tok = tiny_model  # 256 positions
    settings = GenerationSettings(max_new_tokens=48)
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match="too long"):
        next(stream_side_by_side([(model, tok)], "x" * 1_000_000, settings, threading.Event()))
    with pytest.raises(LimitError, match=r"at most 208 \(256 positions minus 48"):
        next(stream_side_by_side([(model, tok)], "Mira walked. " * 100, settings,
                                 threading.Event()))
    assert time.perf_counter() - t0 < 1.0
