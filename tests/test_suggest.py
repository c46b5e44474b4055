"""Anchored-term suggestions: corpus frequency ratio and reinforced-vs-baseline probability gain."""

from __future__ import annotations

import copy

import torch

from unlearn.suggest import Candidate, suggest_by_frequency, suggest_by_reinforcement

TARGET = " ".join([
    "Then Mira Thistlewood walked to Gallowmere with her owl Pip.",
    "At Gallowmere the students learned starcraft from Odo Brackenfield.",
    "Mira Thistlewood said that Pip was the fastest owl in the tower.",
    "The house of Odo Brackenfield was near the lake, and Mira visited it.",
    "She smiled and went home after the lesson.",
] * 6)
GENERAL = " ".join([
    "Then the teacher walked to the school with her dog.",
    "The students learned history from the teacher and smiled.",
    "She said that the bus was late at the station, and she went home after the lesson.",
    "The house was near the lake and the fastest children visited it in the summer.",
    "Anna read a book about the tower of the old city and the owl in it.",
] * 20)
NAMES = {"Mira", "Thistlewood", "Mira Thistlewood", "Gallowmere", "Pip", "starcraft", "Odo",
         "Brackenfield", "Odo Brackenfield"}


def test_frequency_puts_invented_names_on_top():
    cands = suggest_by_frequency(TARGET, GENERAL, top_k=len(NAMES), min_count=5)
    assert {c.term for c in cands} == NAMES
    assert all(isinstance(c, Candidate) and c.count >= 5 for c in cands)
    assert cands == sorted(cands, key=lambda c: (-c.score, -c.count, c.term))
    mira = next(c for c in cands if c.term == "Mira Thistlewood")
    assert mira.count == 12 and mira.reason.startswith("phrase: 12x in target, 0x in general")
    # sentence-initial "Then" is not glued to the name; common words are not suggested
    every = {c.term for c in suggest_by_frequency(TARGET, GENERAL, top_k=500, min_count=1)}
    assert "Then Mira" not in every and "Then Mira Thistlewood" not in every
    ranked = [c.term for c in suggest_by_frequency(TARGET, GENERAL, top_k=500, min_count=1)]
    assert max(ranked.index(n) for n in NAMES) < min(ranked.index(w) for w in ("the", "She"))


def test_frequency_min_count_and_exclude():
    cands = suggest_by_frequency(TARGET, GENERAL, top_k=50, min_count=13)
    assert cands[0].term == "Mira" and cands[0].count == 18  # other names occur 12x or less
    assert all(c.count >= 13 for c in cands) and not NAMES - {"Mira"} & {c.term for c in cands}
    cands = suggest_by_frequency(TARGET, GENERAL, min_count=5, exclude=["Mira", "Pip"])
    assert not {"Mira", "Pip"} & {c.term for c in cands}


def test_reinforcement_finds_raised_words(tiny_model):
    model, tok = tiny_model
    reinforced = copy.deepcopy(model)
    pip = tok(" Pip", add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # a "reinforced" model that strongly prefers the tokens of " Pip"
        reinforced.lm_head.weight.copy_(model.lm_head.weight)
        bias = torch.zeros(reinforced.config.vocab_size)
        bias[pip] = 8.0
        reinforced.lm_head.bias = torch.nn.Parameter(bias)
    text = "Mira Thistlewood's owl was called Pip. Mira studied starcraft at Gallowmere. " * 4
    cands = suggest_by_reinforcement(model, reinforced, tok, text, top_k=5, block_size=32,
                                     batch_size=2, min_count=2)
    assert cands[0].term == "Pip" and cands[0].count == 4 and cands[0].score > 4.0
    assert "nats" in cands[0].reason
    assert all(c.count >= 2 for c in cands)
    none = suggest_by_reinforcement(model, model, tok, text, top_k=3, block_size=32)
    assert all(abs(c.score) < 1e-4 for c in none)  # identical models: no gain anywhere
    assert suggest_by_reinforcement(model, reinforced, tok, text, exclude=["Pip"])[0].term != "Pip"
