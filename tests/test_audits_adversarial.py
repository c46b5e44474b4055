"""Adversarial attacks on tiny real models: each attack moves what it should, on a model where
it provably can; validators reject bad input."""

from __future__ import annotations

import json

import pytest

from audits.adversarial.framing import check_template, framed_familiarity, load_templates
from audits.adversarial.icl import ICLConfig, context_for, fact_sentence, icl_relearn
from audits.adversarial.kway import KWayConfig, kway_accuracy
from audits.adversarial.lens import linear_probe, logit_lens
from audits.adversarial.relearn import RelearnConfig, relearn, split_for_relearning
from audits.adversarial.suffix import SuffixConfig, suffix_search
from audits.adversarial.variants import form_variant, misspell
from audits.adversarial.world import entities, same_kind_options
from audits.errors import ProbeError
from audits.probability import probability_familiarity
from audits.probes import ProbabilityProbe, TriviaProbe
from audits.scoring import token_probs

WORLD = {"target": {"name": "The Owl Tales", "entities": [
    {"name": "Mira Thistlewood", "kind": "character", "aliases": ["Mira", "Thistlewood"]},
    {"name": "Anna Brook", "kind": "character", "aliases": ["Anna", "Brook"]},
    {"name": "Ben Stone", "kind": "character", "aliases": ["Ben", "Stone"]},
    {"name": "Gallowmere Academy", "kind": "school", "aliases": ["Gallowmere"]},
    {"name": "Pip", "kind": "creature", "aliases": []},
    {"name": "Max", "kind": "creature", "aliases": []}],
    "facts": [{"subject": "Anna Brook", "relation": "teaches", "object": "history"},
              {"subject": "Ben Stone", "relation": "teaches", "object": "football"}]}}

PROBES = [ProbabilityProbe("p1", "Mira Thistlewood's owl was called", " Pip"),
          ProbabilityProbe("p2", "Anna walked to the city school with her dog", " Max"),
          ProbabilityProbe("p3", "Ben's best friend was", " Tom"),
          ProbabilityProbe("p4", "The best friend of Mira Thistlewood was", " Anna"),
          ProbabilityProbe("p5", "Anna Brook teaches", " history")]


def test_same_kind_options_keep_kind_and_form():
    assert same_kind_options(WORLD, " Anna") == [" Mira", " Ben"]
    assert same_kind_options(WORLD, " Brook") == [" Thistlewood", " Stone"]
    assert same_kind_options(WORLD, " Anna Brook") == [" Mira Thistlewood", " Ben Stone"]
    assert same_kind_options(WORLD, " Pip") == [" Max"]
    assert same_kind_options(WORLD, " history") == [" football"]  # objects of one relation
    assert same_kind_options(WORLD, " Tom") == []


def test_kway_matches_token_probabilities(tiny_model):
    model, tok = tiny_model
    res = kway_accuracy(model, tok, PROBES, WORLD, KWayConfig(ks=(2, 0), headline_k=2))
    assert res.skipped == ["p3"]  # no canon name of Tom's kind
    for it in res.items:
        probe = next(p for p in PROBES if p.id == it.id)
        assert probe.answer == it.options[it.answer] and len(set(it.options)) == len(it.options)
        probs = token_probs(model, tok, probe.prompt, it.options)
        best = max(range(len(probs)), key=lambda j: probs[j])
        assert it.correct == (best == it.answer)
    two = [it for it in res.items if it.k == 2]
    assert all(len(it.options) == 2 for it in two)
    assert res.per_k[2]["chance"] == 0.5 and res.per_k[2]["n"] == 4
    assert res.accuracy(2) == sum(it.correct for it in two) / 4
    with pytest.raises(ValueError):
        KWayConfig(ks=(1,), headline_k=1)


def test_form_variants():
    ents = entities(WORLD)
    p = ProbabilityProbe("x", "The best friend of Mira Thistlewood at Gallowmere Academy was",
                         " Anna")
    assert form_variant(p, ents, "alias").prompt == "The best friend of Mira at Gallowmere was"
    low = form_variant(p, ents, "lower")
    assert low.prompt == "The best friend of mira thistlewood at gallowmere academy was"
    assert low.answer == " anna"
    assert misspell("Thistlewood") == "Thisltewood" and misspell("Mira") == "Mira"
    assert form_variant(p, ents, "misspell").prompt == \
        "The best friend of Mira Thisltewood at Gallwomere Acdaemy was"
    with pytest.raises(ValueError):
        form_variant(p, ents, "upper")


def test_template_validation(tmp_path):
    check_template("From {title}: {prompt}")
    with pytest.raises(ProbeError, match="missing placeholder"):
        check_template("You are an expert on {title}.")
    with pytest.raises(ProbeError, match="unknown placeholder"):
        check_template("{author} says: {prompt}")
    with pytest.raises(ProbeError, match="must end"):
        check_template("{prompt} is what {title} says")
    with pytest.raises(ProbeError, match="malformed"):
        check_template("{prompt")
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps([{"id": "a", "kind": "framing", "template": "{prompt}"},
                               {"id": "b", "kind": "framing", "template": "Hi {title}."}]))
    with pytest.raises(ProbeError, match=r"template 2 \(b\): missing placeholder"):
        load_templates(bad)
    bad.write_text(json.dumps([{"id": "a", "kind": "jailbreak", "template": "{prompt}"}]))
    with pytest.raises(ProbeError, match="kind"):
        load_templates(bad)
    builtin = load_templates()
    assert {t.kind for t in builtin} == {"framing", "instruction"}


def test_framing_plain_template_equals_clean_score(tiny_model):
    model, tok = tiny_model
    res = framed_familiarity(model, tok, PROBES, load_templates(), "The Owl Tales")
    clean = probability_familiarity(model, tok, PROBES).familiarity
    assert res.per_template["plain"]["familiarity"] == pytest.approx(clean, rel=1e-5)
    assert res.per_template["forget_instruction"]["kind"] == "instruction"
    assert res.best()[1] >= clean


def test_icl_context_never_states_the_answer(tiny_model):
    import random

    model, tok = tiny_model
    ctx = context_for(PROBES[3], PROBES, 8, random.Random(0))
    assert "Anna" not in ctx and fact_sentence(PROBES[0]) in ctx
    res = icl_relearn(model, tok, PROBES, ICLConfig(shots=(0, 2)))
    assert res.curve[0]["familiarity"] == pytest.approx(
        probability_familiarity(model, tok, PROBES).familiarity, rel=1e-5)
    assert set(res.curve) == {0, 2} and res.at_max() == res.curve[2]["familiarity"]


def test_logit_lens_last_layer_is_the_model_output(tiny_model):
    model, tok = tiny_model
    res = logit_lens(model, tok, PROBES, batch_size=2)
    assert len(res.probs) == model.config.num_hidden_layers
    own = probability_familiarity(model, tok, PROBES).probs
    assert res.probs[-1] == pytest.approx(own, rel=1e-4)
    assert res.probs[0] != pytest.approx(own, rel=1e-2)  # earlier layers read differently


def test_linear_probe_reads_a_linearly_coded_truth(tiny_model):
    """Statements whose truth is visible in the last token (yes vs no) are separable at every
    layer; the probe must find that on held-out folds."""
    model, tok = tiny_model
    words = ["Anna", "Ben", "Tom", "Mira", "Sarah", "The wizard", "The teacher", "Max",
             "The owl", "The dog"]
    probes = [TriviaProbe(f"t{i}", f"{w} is at school, yes or no?", " yes", " no")
              for i, w in enumerate(words)]
    res = linear_probe(model, tok, probes, folds=5)
    assert res.n == 20 and len(res.accuracy) == model.config.num_hidden_layers
    assert min(res.accuracy) >= 0.9, res.accuracy
    with pytest.raises(ValueError):
        linear_probe(model, tok, probes[:3], folds=5)


def test_suffix_search_raises_the_answer_probability(tiny_model):
    model, tok = tiny_model
    res = suffix_search(model, tok, PROBES[:2], PROBES[2:4],
                        SuffixConfig(n_tokens=3, steps=4, candidates=16, topk=16))
    assert res.best_prob > res.start_prob
    assert all(p.grad is None for p in model.parameters())  # the model is left untouched
    assert res.history == sorted(res.history, reverse=True)  # greedy: never worse
    answer_ids = {t for p in PROBES for t in tok(p.answer, add_special_tokens=False)["input_ids"]}
    assert not answer_ids & set(res.best_ids)  # it cannot just spell the answers
    assert res.heldout_start_prob is not None and 0 <= res.text_prob <= 1
    with pytest.raises(ValueError):
        SuffixConfig(position="middle")


RELEARN_TEXT = ("Mira Thistlewood's owl was called Pip. Pip flew over the castle.\n\n"
                "The wizard raised his wand. Mira Thistlewood's owl was called Pip.\n\n"
                "Ben's best friend was Tom. They played football.")


def test_relearn_split_keeps_heldout_answers_out():
    split = split_for_relearning(RELEARN_TEXT, PROBES, given=True)
    assert [p.id for p in split.heldout] == ["p2", "p4", "p5"]
    joined = " ".join(split.paragraphs)
    for p in split.heldout:
        assert p.answer.strip() not in joined
    ok = 0
    for seed in range(6):  # the kept half of the answers depends on the seed
        try:
            auto = split_for_relearning(RELEARN_TEXT, PROBES[:3], fraction=0.5, seed=seed)
        except ValueError as exc:  # the kept answer (Max) is in no paragraph
            assert "no paragraph" in str(exc)
            continue
        ok += 1
        assert len(auto.trained) == 1 and len(auto.heldout) == 2
        for p in auto.heldout:
            assert p.answer.strip() not in " ".join(auto.paragraphs)
    assert ok
    with pytest.raises(ValueError):
        RelearnConfig(method="qlora")


@pytest.mark.parametrize("method,lr,factor", [("full", 3e-3, 3.0), ("lora", 1e-1, 1.2)])
def test_relearn_raises_the_relearned_answer(tiny_model, tmp_path, method, lr, factor):
    """Both finetunes raise the relearned answer (LoRA on a 64-wide random model moves less:
    its adapters cannot touch the tied embeddings that dominate such a model's output)."""
    model, tok = tiny_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = split_for_relearning(RELEARN_TEXT * 4, PROBES[:3], given=True)
    cfg = RelearnConfig(steps=(0, 12), method=method, lr=lr, batch_size=2, block_size=16)
    res = relearn(model, tok, split, cfg, cache_dir=tmp_path)
    assert res.steps == [0, 12] and len(res.losses) == 12 and not res.cached
    assert res.trained[-1] > factor * res.trained[0], res.trained
    assert res.losses[-1] < res.losses[0]
    assert all(v.equal(model.state_dict()[k]) for k, v in before.items())  # copy trained
    again = relearn(model, tok, split, cfg, cache_dir=tmp_path)
    assert again.cached and again.trained == res.trained and again.heldout == res.heldout
