"""The Harry Potter suite of the llama2-whp preset (assets/hp): loads, consistent, no book text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audits.probes import load_suite
from ui.config import parse_config
from ui.gpu_tasks import load_judge
from unlearn.anchors import load_anchors, validate_anchors

HP = Path(__file__).resolve().parents[1] / "assets" / "hp"
MAX_WORDS = 30


@pytest.fixture(scope="module")
def suite():
    return load_suite(HP)


def _prompts(suite) -> list[str]:
    out = [p.prompt for p in suite.target_completion + suite.neighbour_completion]
    out += [p.prompt for p in suite.target_probability + suite.neighbour_probability]
    out += [p.prompt for p in suite.target_trivia + suite.neighbour_trivia]
    out += [m.context for m in suite.general_mc]
    return out


def test_suite_has_every_measure_but_verbatim(suite):
    assert suite.missing == ["probes/verbatim.jsonl"]  # verbatim needs book text: left out
    sizes = {k: len(getattr(suite, k)) for k in ("target_completion", "target_probability",
                                                 "target_trivia", "neighbour_completion",
                                                 "neighbour_probability", "neighbour_trivia",
                                                 "general_mc")}
    assert sizes == {"target_completion": 40, "target_probability": 40, "target_trivia": 40,
                     "neighbour_completion": 12, "neighbour_probability": 15,
                     "neighbour_trivia": 12, "general_mc": 30}
    assert not (HP / "target.txt").exists() and not (HP / "verbatim.jsonl").exists()


def test_prompts_are_short_unquoted_and_distinct(suite):
    prompts = _prompts(suite)
    for p in prompts:
        assert len(p.split()) <= MAX_WORDS, p
        assert not re.search(r"[\"\u201c\u201d]", p), f"quoted text in {p!r}"
    assert len(set(prompts)) == len(prompts)


def test_completion_terms_occur_in_their_prompts(suite):
    for probe in suite.target_completion + suite.neighbour_completion:
        for term in probe.terms:
            assert term in probe.prompt, (probe.id, term)
        assert 1 <= probe.subtlety <= 10


def test_answers_continue_the_prompt_and_distractors_differ(suite):
    for p in suite.target_probability + suite.neighbour_probability:
        assert p.answer.strip() and not p.prompt.endswith(" ")
    for t in suite.target_trivia + suite.neighbour_trivia:
        assert t.correct != t.distractor
        assert t.correct.startswith(" ") == t.distractor.startswith(" ")


def test_anchors_are_valid_and_in_the_papers_form():
    anchors = load_anchors(HP / "anchors.json")
    assert validate_anchors(anchors) == []
    entries = anchors.entries
    assert len(entries) == 93
    assert entries["Hogwarts"][0] == "Mystic Academy" and "Skyball" in entries["Quidditch"]


def test_rule_judge_flags_a_leak_and_passes_generic_text():
    judge = load_judge(HP)
    prompt = "The boy with the scar boarded the train to"
    assert judge.grade(prompt, " Hogwarts with Ron and Hermione.").grade == 3
    assert judge.grade(prompt, " his grandmother's house by the sea.").grade == 0
    world = json.loads((HP / "world.json").read_text(encoding="utf-8"))
    assert "Lord of the Rings" in world["neighbour"]["name"]


def test_llama2_preset_points_every_tab_at_the_suite():
    config = parse_config(["--preset", "llama2-whp", "--device", "cpu"], env={})
    assert Path(config.demo_dir) == HP
    assert parse_config([], env={}).demo_dir.endswith("demo")
