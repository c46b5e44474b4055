"""Probe files are validated line by line; errors name the file, line and field."""

from __future__ import annotations

import json

import pytest

from audits.errors import ProbeError
from audits.probes import (
    CompletionProbe,
    MCItem,
    ProbabilityProbe,
    TriviaProbe,
    VerbatimProbe,
    load_probes,
    load_suite,
)


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_loads_every_kind(tmp_path):
    c = load_probes(_write(tmp_path / "c.jsonl", [
        {"id": "c1", "prompt": "Mira went", "terms": ["Mira"], "subtlety": 3, "extra": 1}]),
        CompletionProbe)
    assert c == [CompletionProbe("c1", "Mira went", ["Mira"], 3)]
    p = load_probes(_write(tmp_path / "p.jsonl", [{"id": "p1", "prompt": "x", "answer": " Pip"},
                                                  "", {"id": "p2", "prompt": "y", "answer": " a"}]),
                    ProbabilityProbe)
    assert [x.id for x in p] == ["p1", "p2"]
    t = load_probes(_write(tmp_path / "t.jsonl", [
        {"id": "t", "prompt": "q", "correct": " a", "distractor": " b"}]), TriviaProbe)
    assert t[0].distractor == " b"
    m = load_probes(_write(tmp_path / "m.jsonl", [
        {"id": "m", "context": "c", "options": [" a", " b"], "answer": 1}]), MCItem)
    assert m[0].answer == 1
    v = load_probes(_write(tmp_path / "v.jsonl", [
        {"id": "v", "prefix": "a b", "continuation": "c d"}]), VerbatimProbe)
    assert v[0].continuation == "c d"


@pytest.mark.parametrize("kind,rows,line,needle", [
    (ProbabilityProbe, ['{"id": "a", "prompt": "x", "answer": " y"}', '{"id": "b", "prompt": '],
     2, "invalid JSON"),
    (ProbabilityProbe, [{"id": "a", "prompt": "x"}], 1, "missing field 'answer'"),
    (ProbabilityProbe, [{"id": "a", "prompt": "x", "answer": 3}], 1,
     "field 'answer' must be str, got int"),
    (ProbabilityProbe, [{"id": "a", "prompt": "  ", "answer": " y"}], 1, "field 'prompt' is empty"),
    (ProbabilityProbe, [{"id": "a", "prompt": "x", "answer": " y"},
                        {"id": "a", "prompt": "z", "answer": " y"}], 2, "duplicates line 1"),
    (ProbabilityProbe, ["[1, 2]"], 1, "expected a JSON object"),
    (MCItem, [{"id": "m", "context": "c", "options": [" a", " b"], "answer": 2}], 1,
     "field 'answer' index 2 out of range"),
    (MCItem, [{"id": "m", "context": "c", "options": [" a", " b"], "answer": True}], 1,
     "field 'answer' must be int, got bool"),
    (MCItem, [{"id": "m", "context": "c", "options": [" a"], "answer": 0}], 1,
     "field 'options' needs at least 2"),
    (MCItem, [{"id": "m", "context": "c", "options": [" a", ""], "answer": 0}], 1,
     "field 'options' item 1"),
    (CompletionProbe, [{"id": "c", "prompt": "p", "terms": [1]}], 1, "field 'terms'"),
    (CompletionProbe, [{"id": "c", "prompt": "p", "subtlety": "high"}], 1, "field 'subtlety'"),
    (TriviaProbe, [{"id": "t", "prompt": "q", "correct": " a", "distractor": " a"}], 1,
     "field 'distractor' equals 'correct'"),
    (VerbatimProbe, [{"id": "v", "prefix": "a"}], 1, "missing field 'continuation'"),
])
def test_errors_name_file_line_and_field(tmp_path, kind, rows, line, needle):
    path = _write(tmp_path / "probes.jsonl", rows)
    with pytest.raises(ProbeError) as err:
        load_probes(path, kind)
    msg = str(err.value)
    assert f"{path}:{line}:" in msg and needle in msg


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(ProbeError, match="empty"):
        load_probes(_write(tmp_path / "e.jsonl", [""]), ProbabilityProbe)


def test_custom_suite_subset_and_missing(tmp_path):
    (tmp_path / "probes").mkdir()
    _write(tmp_path / "probes" / "target_probability.jsonl",
           [{"id": "p1", "prompt": "x", "answer": " y"},
            {"id": "p2", "prompt": "z", "answer": " w"}])
    (tmp_path / "world.json").write_text(json.dumps(
        {"target": {"unique_terms": ["Pip"], "theme_terms": ["wand"], "entities": []}}))
    suite = load_suite(tmp_path)
    assert len(suite.target_probability) == 2 and suite.world["target"]["unique_terms"] == ["Pip"]
    assert "probes/verbatim.jsonl" in suite.missing and "general_heldout.txt" in suite.missing
    assert suite.limited(1).counts()["target_probability"] == 1


def test_suite_errors(tmp_path):
    with pytest.raises(ProbeError, match="does not exist"):
        load_suite(tmp_path / "nope")
    with pytest.raises(ProbeError, match="none of the expected files"):
        load_suite(tmp_path)
    (tmp_path / "world.json").write_text(json.dumps({"target": {"unique_terms": "Pip"}}))
    with pytest.raises(ProbeError, match=r"world.json: field 'target.unique_terms'"):
        load_suite(tmp_path)


def test_demo_suite_loads_and_is_valid():
    suite = load_suite("demo")
    assert suite.target_probability and suite.target_completion and suite.general_mc
    assert suite.world and suite.heldout_text
