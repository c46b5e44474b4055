"""`ui.streaming`: both panes stream at once, cancel stops both, a slow model never blocks."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
import torch

from ui.streaming import (
    GenerationSettings,
    SeededSampler,
    StreamStats,
    format_prompt,
    seeded_generator,
    stream_side_by_side,
)
from unlearn.models import load_model


@pytest.fixture(scope="module")
def pair(tiny_model_dir):
    """Two independent copies of the tiny model (hooks on one do not touch the other)."""
    return load_model(str(tiny_model_dir)), load_model(str(tiny_model_dir))


def slowed(model, seconds: float):
    """Make every forward step of `model` take at least `seconds` (returns the hook handle)."""
    return model.register_forward_pre_hook(lambda *_: time.sleep(seconds))


@contextmanager
def both_slowed(pair, seconds: float):
    """Both models of `pair` slowed by `seconds` per forward step while inside the block."""
    hooks = [slowed(model, seconds) for model, _ in pair]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def fixed(n: int, **kw) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=n, min_new_tokens=n, **kw)


def test_both_panes_receive_text(pair):
    stats = StreamStats()
    outs = list(stream_side_by_side(pair, "Mira walked to", fixed(12), threading.Event(), stats))
    assert outs, "nothing yielded"
    left, right = outs[-1]
    assert left.strip() and right.strip()
    assert stats.tokens == [12, 12]
    assert all(t is not None for t in stats.first_token_s)
    # texts only grow: every yield extends the previous one
    for before, after in zip(outs, outs[1:], strict=False):
        assert after[0].startswith(before[0]) and after[1].startswith(before[1])


def test_greedy_matches_plain_generate(pair):
    (m, tok), _ = pair
    settings = GenerationSettings(max_new_tokens=10, min_new_tokens=10, temperature=0)
    *_, (left, _right) = stream_side_by_side(pair, "Anna walked", settings, threading.Event())
    enc = tok("Anna walked", return_tensors="pt")
    with torch.no_grad():
        ids = m.generate(**enc, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    assert left == tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_cancel_stops_both_quickly(pair):
    with both_slowed(pair, 0.03):
        cancel, stats = threading.Event(), StreamStats()
        it = stream_side_by_side(pair, "The teacher", fixed(300), cancel, stats)
        next(it)
        t0 = time.perf_counter()
        cancel.set()
        for _ in it:
            pass
        elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"cancel took {elapsed:.2f} s"
    assert max(stats.tokens) < 100, stats.tokens  # 300 tokens would take 9 s


def test_closing_the_iterator_cancels(pair):
    """A closed generator (client disconnected) sets the flag; generate threads end."""
    with both_slowed(pair, 0.03):
        cancel, stats = threading.Event(), StreamStats()
        it = stream_side_by_side(pair, "The teacher", fixed(300), cancel, stats)
        next(it)
        it.close()
        assert cancel.is_set()
        deadline = time.time() + 3
        while time.time() < deadline and None in stats.end_s:
            time.sleep(0.02)
    assert None not in stats.end_s, "generate threads still running after close()"
    assert max(stats.tokens) < 100


def test_slow_model_does_not_hold_back_fast_one(pair):
    (_, _), (b, _) = pair
    hook = slowed(b, 0.05)  # right pane: 40 steps x 50 ms = 2 s
    try:
        stats = StreamStats()
        settings = [fixed(8), fixed(40)]
        t0 = time.perf_counter()
        seen: list[tuple[float, str, str]] = []
        for left, right in stream_side_by_side(pair, "Ben's friend", settings,
                                               threading.Event(), stats):
            seen.append((time.perf_counter() - t0, left, right))
    finally:
        hook.remove()
    final_left, final_right = seen[-1][1], seen[-1][2]
    left_done_at = next(t for t, left, _ in seen if left == final_left)
    right_done_at = next(t for t, _, right in seen if right == final_right)
    assert left_done_at < 1.0, f"fast pane finished only at {left_done_at:.2f} s"
    assert right_done_at > 1.5
    assert left_done_at < right_done_at
    # while the fast pane was already final, the slow pane was still incomplete
    assert any(left == final_left and right != final_right for _, left, right in seen)


class _Broken:
    device = torch.device("cpu")

    def generate(self, **_):
        raise RuntimeError("boom")


def test_a_failing_model_reports_in_its_pane_only(pair):
    (m, tok), _ = pair
    stats = StreamStats()
    *_, (left, right) = stream_side_by_side([(m, tok), (_Broken(), tok)], "Anna",
                                            fixed(6), threading.Event(), stats)
    assert left.strip()
    assert "generation failed: RuntimeError: boom" in right
    assert stats.errors[1] and stats.errors[0] is None


def test_settings_validation_and_kwargs():
    with pytest.raises(ValueError, match="top_p"):
        GenerationSettings(top_p=0)
    with pytest.raises(ValueError, match="mode"):
        GenerationSettings(mode="poem")
    greedy = GenerationSettings(temperature=0).generate_kwargs()
    assert greedy["do_sample"] is False
    sample = GenerationSettings(temperature=0.7, top_k=5).generate_kwargs()
    # sampling is done by the seeded sampler (own generator), generate only takes its choice
    assert sample["do_sample"] is False
    (sampler,) = sample["logits_processor"]
    assert isinstance(sampler, SeededSampler)
    assert [type(w).__name__ for w in sampler.warpers] == [
        "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper"]


def test_seeded_sampler_draws_from_the_warped_distribution():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.2, 1e-9]]))
    gen = seeded_generator(0)
    sampler = SeededSampler(gen, temperature=1.0, top_k=2)
    picks = [int(sampler(None, scores.clone()).argmax()) for _ in range(400)]
    assert set(picks) == {0, 1}  # top-k=2 cuts tokens 2 and 3
    share = picks.count(0) / len(picks)
    assert 0.53 < share < 0.72, share  # 0.5 / (0.5 + 0.3) = 0.625
    out = sampler(None, scores.clone())
    assert torch.isfinite(out).sum() == 1  # one-hot: greedy decoding takes the draw


def test_same_seed_same_sampled_text_per_pane(pair):
    """Each pane has its own generator: seeds repeat texts though both threads sample at once,
    and a seed does not depend on what the other pane does."""
    settings = fixed(16, temperature=1.0, seed=7)
    runs = [list(stream_side_by_side(pair, "Mira walked to", settings, threading.Event()))[-1]
            for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    # the same model (copies) with the same seed gives the same text in both panes
    assert runs[0][0] == runs[0][1]
    other = list(stream_side_by_side(pair, "Mira walked to", fixed(16, temperature=1.0, seed=8),
                                     threading.Event()))[-1]
    assert other != runs[0]
    # one pane with seed 7, the other with seed 8: pane 0 keeps its seed-7 text
    mixed = list(stream_side_by_side(pair, "Mira walked to",
                                     [settings, fixed(16, temperature=1.0, seed=8)],
                                     threading.Event()))[-1]
    assert mixed == (runs[0][0], other[1])


def test_chat_templates(tiny_model):
    _, tok = tiny_model
    completion = GenerationSettings(mode="completion")
    assert format_prompt(tok, "Hi", completion) == ("Hi", True)
    llama = GenerationSettings(mode="chat", chat_template="llama2", system_prompt="Be brief.")
    text, special = format_prompt(tok, "Who is Mira?", llama)
    assert text == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWho is Mira? [/INST]" and special
    plain = GenerationSettings(mode="chat", chat_template="auto")
    assert format_prompt(tok, "Hello", plain)[0] == "User: Hello\nAssistant:"


def test_both_panes_get_the_first_models_prompt_format(tiny_model_dir):
    """`auto` chat template: the original's tokenizer has a template, the unlearned one has none
    (as with Llama-2-chat vs the WHP model); both panes still get the original's format."""
    with_template = load_model(str(tiny_model_dir))
    without = load_model(str(tiny_model_dir))
    with_template[1].chat_template = "{% for m in messages %}Q: {{ m['content'] }}{% endfor %}\nA:"
    assert without[1].chat_template is None
    prompts = {}

    def first_input(name):
        def hook(module, args, kwargs):
            prompts.setdefault(name, kwargs["input_ids"][0].tolist())
        return hook

    hooks = [m.register_forward_pre_hook(first_input(n), with_kwargs=True)
             for n, (m, _) in (("left", with_template), ("right", without))]
    settings = GenerationSettings(max_new_tokens=2, temperature=0.0, mode="chat",
                                  chat_template="auto")
    try:
        list(stream_side_by_side([with_template, without], "Who is Mira?", settings,
                                 threading.Event()))
    finally:
        for h in hooks:
            h.remove()
    text, special = format_prompt(with_template[1], "Who is Mira?", settings)
    assert text == "Q: Who is Mira?A:" and not special
    expected = with_template[1](text, add_special_tokens=False)["input_ids"]
    assert prompts["left"] == prompts["right"] == expected
    plain = format_prompt(without[1], "Who is Mira?", settings)[0]
    assert plain == "User: Who is Mira?\nAssistant:"  # what the right side got on its own
