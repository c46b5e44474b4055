"""Anchored-term dictionary: files, validation messages, redundant-key filter, seeded choice."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from unlearn.anchors import (
    AnchorDictionary,
    AnchorError,
    choose_translations,
    filter_redundant,
    load_anchors,
    save_anchors,
    validate_anchors,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"


def errors(anchors: AnchorDictionary) -> list[tuple[str, str]]:
    return [(i.key, i.message) for i in validate_anchors(anchors) if i.severity == "error"]


def test_json_round_trip_and_single_string_values(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"Harry": ["Jon", "Mark"], "Hogwarts": "Mystic Academy"}))
    anchors = load_anchors(path)
    assert anchors.entries == {"Harry": ["Jon", "Mark"], "Hogwarts": ["Mystic Academy"]}
    out = tmp_path / "sub" / "b.json"
    save_anchors(anchors, out)
    assert load_anchors(out) == anchors
    assert not list(out.parent.glob("*.tmp"))  # atomic write leaves no temp file


def test_json_duplicate_keys_are_merged(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"Harry": "Jon", "Harry": ["Mark", "Jon"]}')
    assert load_anchors(path).entries == {"Harry": ["Jon", "Mark"]}


def test_csv_rows_pipes_header_and_round_trip(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("key,translation\nHarry,Jon\nHarry, Mark \nHogwarts,Mystic Academy|Old School\n"
                    "\n\"Ron, the friend\",Mark\n")
    anchors = load_anchors(path)
    assert anchors.entries == {"Harry": ["Jon", "Mark"],
                               "Hogwarts": ["Mystic Academy", "Old School"],
                               "Ron, the friend": ["Mark"]}
    out = tmp_path / "b.csv"
    save_anchors(anchors, out)
    assert out.read_text().splitlines()[0] == "key,translation"
    assert load_anchors(out) == anchors
    no_header = tmp_path / "c.csv"
    no_header.write_text("Harry,Jon\n")
    assert load_anchors(no_header).entries == {"Harry": ["Jon"]}


@pytest.mark.parametrize("name,content,message", [
    ("a.json", "[1, 2]", "expected a JSON object"),
    ("a.json", "{not json", "invalid JSON"),
    ("a.json", '{"Harry": 3}', "must be a string or a list"),
    ("a.csv", "Harry\n", "needs two columns"),
    ("a.txt", "Harry=Jon", "unsupported dictionary format"),
])
def test_malformed_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AnchorError, match=message):
        load_anchors(path)


def test_missing_file(tmp_path):
    with pytest.raises(AnchorError, match="cannot read"):
        load_anchors(tmp_path / "nope.json")


def test_save_csv_refuses_pipe(tmp_path):
    with pytest.raises(AnchorError, match="save as .json"):
        save_anchors(AnchorDictionary({"A": ["x|y"]}), tmp_path / "a.csv")


def test_validation_errors_have_clear_messages():
    anchors = AnchorDictionary({
        "": ["x"],
        "Pip": [],
        "Mira": ["", "Anna"],
        "Gallowmere": ["gallowmere"],
        "Odo": ["Ben"], "odo ": ["Tom"],
        "Brindle": ["the Pip cat"],
        "Thistle": ["Thistlewood"],  # "Thistle" is not a whole word of it: fine
    })
    got = errors(anchors)
    assert ("", "empty key") in got
    assert ("Pip", "key has no translation") in got
    assert ("Mira", "translation #1 is empty") in got
    assert ("Gallowmere", "translation #1 'gallowmere' equals the key") in got
    assert ("Odo", "duplicate key: differs from 'odo ' only by case/whitespace") in got
    assert ("odo ", "duplicate key: differs from 'Odo' only by case/whitespace") in got
    assert ("Brindle", "translation #1 'the Pip cat' contains the key(s) 'Pip': the generic "
                       "text would keep the term") in got
    assert not any(k == "Thistle" for k, _ in got)
    assert len(got) == 7
    with pytest.raises(AnchorError) as info:
        anchors.check()
    assert "7 error(s)" in str(info.value) and len(info.value.issues) == 7
    assert "'Brindle': translation #1" in str(info.value)


def test_validation_warnings_only_on_clean_dictionary():
    anchors = AnchorDictionary({"Harry": ["Jon"], "Ron": ["Jon"], "Harry's": ["Jon's"],
                                " Pip": ["Tom"]})
    issues = validate_anchors(anchors)
    assert all(i.severity == "warning" for i in issues)
    messages = {(i.key, i.message.split(":")[0].split(" (")[0]) for i in issues}
    assert ("Harry", "translation 'Jon' is shared with ['Ron']") in messages
    assert ("Harry's", "redundant") in messages
    assert (" Pip", "key has surrounding or repeated whitespace") in messages
    assert anchors.check() is anchors


def test_filter_redundant():
    anchors = AnchorDictionary({
        "Harry": ["Jon"], "Potter": ["Smith"], "Harry's": ["Jon's"], "Harrys": ["Jons"],
        "Potters": ["Smiths"], "Potters'": ["Smiths'"], "Harry Potter": ["Jon Smith"],
        "Harry Potter's": ["Jon Smith's"], "Harry's Owl": ["Jon's Bird"], "Owl": ["Bird"],
        "Dumbledore's Army": ["The Club"], "Hogwarts": ["Mystic Academy"],
    })
    kept, dropped = filter_redundant(anchors)
    assert dropped == ["Harry's", "Harrys", "Potters", "Potters'", "Harry Potter",
                       "Harry Potter's", "Harry's Owl"]
    assert list(kept.entries) == ["Harry", "Potter", "Owl", "Dumbledore's Army", "Hogwarts"]
    assert filter_redundant(kept) == (kept, [])


def test_choose_translations_seeded():
    anchors = AnchorDictionary({"B": ["x", "y", "z"], "A": ["p", "q"], "C": ["only"]})
    first = choose_translations(anchors, random.Random(3))
    assert first == choose_translations(anchors, random.Random(3))
    shuffled = AnchorDictionary(dict(reversed(list(anchors.entries.items()))))
    assert choose_translations(shuffled, random.Random(3)) == first  # order-independent
    assert first["C"] == "only"
    draws = {choose_translations(anchors, random.Random(s))["B"] for s in range(30)}
    assert draws == {"x", "y", "z"}


def test_choose_translations_agree_across_related_keys():
    anchors = AnchorDictionary({"Harry": ["Jon", "Mark"],
                                "Harry Potter": ["Jon Smith", "Mark Brown", "Luke Hall"],
                                "Dark Forest": ["the Old Wood", "the Great Wood"]})
    for seed in range(20):
        choice = choose_translations(anchors, random.Random(seed))
        assert choice["Harry Potter"] == {"Jon": "Jon Smith", "Mark": "Mark Brown"}[choice["Harry"]]
    forests = {choose_translations(anchors, random.Random(s))["Dark Forest"] for s in range(20)}
    assert forests == {"the Old Wood", "the Great Wood"}  # no related key: free choice


def test_non_string_entries_rejected():
    with pytest.raises(AnchorError, match="must be strings"):
        AnchorDictionary({"Harry": [1]})


def test_demo_dictionary_is_clean():
    path = ASSETS / "anchors.json"  # committed: a missing file is a failure, not a skip
    kept, dropped = filter_redundant(load_anchors(path))
    assert [i for i in validate_anchors(kept) if i.severity == "error"] == []
    assert len(kept) > 0
