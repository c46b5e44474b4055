"""Tests of the seeded demo-world generator (`unlearn.demo.generate`)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from unlearn.demo.general import split_sentences
from unlearn.demo.generate import generate_world

KINDS = {"character", "school", "house", "place", "creature", "object", "sport", "spell", "order"}
PROBE_MINIMUM = {
    "target_completion": 100, "target_probability": 40, "target_trivia": 60,
    "neighbour_completion": 30, "neighbour_probability": 30, "neighbour_trivia": 30,
    "target_paraphrase": 300, "neighbour_paraphrase": 200,
    "general_mc": 500, "general_cloze": 500, "verbatim": 60,
}
SCHEMA = {
    "completion": {"id": str, "prompt": str, "terms": list, "subtlety": int},
    "probability": {"id": str, "prompt": str, "answer": str},
    "paraphrase": {"id": str, "prompt": str, "answer": str},
    "trivia": {"id": str, "prompt": str, "correct": str, "distractor": str},
    "general_mc": {"id": str, "context": str, "options": list, "answer": int},
    "general_cloze": {"id": str, "prompt": str, "answer": str},
    "verbatim": {"id": str, "prefix": str, "continuation": str},
}
OPTIONAL = {"general_mc": {"kind": str}}


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world0")
    generate_world(out, seed=0)
    return out


@pytest.fixture(scope="module")
def w(world_dir: Path) -> dict:
    """Everything the generator wrote, loaded."""
    probes = {p.stem: [json.loads(line) for line in p.read_text().splitlines()]
              for p in sorted((world_dir / "probes").glob("*.jsonl"))}
    return {
        "world": json.loads((world_dir / "world.json").read_text()),
        "anchors": json.loads((world_dir / "anchors.json").read_text()),
        "probes": probes,
        **{name: (world_dir / f"{name}.txt").read_text()
           for name in ("target", "neighbour", "general", "general_heldout")},
    }


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def n_words(text: str) -> int:
    return len(text.split())


def test_same_seed_is_byte_identical(world_dir: Path, tmp_path: Path) -> None:
    generate_world(tmp_path, seed=0)
    assert files_of(tmp_path) == files_of(world_dir)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_other_seed_differs(world_dir: Path, tmp_path: Path) -> None:
    generate_world(tmp_path, seed=1)
    assert (tmp_path / "target.txt").read_bytes() != (world_dir / "target.txt").read_bytes()


def test_counts(w: dict, world_dir: Path) -> None:
    target, neighbour = w["world"]["target"], w["world"]["neighbour"]
    assert w["world"]["seed"] == 0
    assert len(target["entities"]) >= 30 and len(target["facts"]) >= 120
    assert len(neighbour["entities"]) >= 15 and len(neighbour["facts"]) >= 50
    words = {k: n_words(w[k]) for k in ("target", "neighbour", "general", "general_heldout")}
    assert 70_000 <= words["target"] <= 140_000
    assert words["general"] >= 3 * words["target"]
    assert 0.4 <= words["neighbour"] / words["target"] <= 0.8
    assert 12_000 <= words["general_heldout"] <= 25_000
    for name, minimum in PROBE_MINIMUM.items():
        assert len(w["probes"][name]) >= minimum, name
    for path in world_dir.rglob("*"):
        assert path.stat().st_size < 4 * 2**20, path


def test_world_schema(w: dict) -> None:
    for key in ("target", "neighbour"):
        saga = w["world"][key]
        names = {e["name"] for e in saga["entities"]}
        assert len(names) == len(saga["entities"])
        for e in saga["entities"]:
            assert set(e) == {"name", "kind", "aliases"} and e["kind"] in KINDS
            assert {e["name"], *e["aliases"]} <= set(saga["unique_terms"])
        for f in saga["facts"]:
            assert set(f) == {"subject", "relation", "object"} and f["subject"] in names
        pairs = [(f["subject"], f["relation"]) for f in saga["facts"]]
        assert len(pairs) == len(set(pairs)), "one object per (subject, relation)"
        kinds = {e["kind"] for e in saga["entities"]}
        assert kinds == KINDS
    theme = w["world"]["target"]["theme_terms"]
    assert {"wand", "spell", "castle"} <= set(theme)
    for term in theme:
        assert term in w["target"].lower() and term in w["neighbour"].lower(), term


def test_unique_terms_do_not_leak(w: dict) -> None:
    target, neighbour = w["world"]["target"], w["world"]["neighbour"]
    for term in target["unique_terms"]:
        assert term in w["target"], term
        for other in ("general", "neighbour", "general_heldout"):
            assert term not in w[other], (term, other)
    for term in neighbour["unique_terms"]:
        for other in ("general", "target", "general_heldout"):
            assert term not in w[other], (term, other)


def test_anchors(w: dict) -> None:
    anchors, general = w["anchors"], w["general"]
    words = Counter(re.findall(r"\w+", general))

    def count(phrase: str) -> int:  # whole words; phrases of several words as substrings
        if " " not in phrase:
            return words[phrase]
        return sum(1 for m in re.finditer(re.escape(phrase), general)
                   if not general[m.start() - 1].isalnum() and not general[m.end()].isalnum())
    assert set(w["world"]["target"]["unique_terms"]) <= set(anchors)
    for key, values in anchors.items():
        assert values and all(isinstance(v, str) and v for v in values)
        for value in values:
            assert value != key
            assert not any(k in value for k in anchors), (key, value)
            assert count(value) >= 3, (key, value)


def test_general_has_everyday_relations(w: dict) -> None:
    general = w["general"]
    assert re.search(r"\b[A-Z][a-z]+'s best friend was [A-Z][a-z]+", general)
    assert re.search(r"\b[A-Z][a-z]+'s (dog|cat) was called [A-Z][a-z]+", general)
    assert general.count("the city school") >= 50 and general.count("football") >= 50


def test_probe_schemas(w: dict) -> None:
    for name, rows in w["probes"].items():
        kind = name.split("_", 1)[1] if name.startswith(("target", "neighbour")) else name
        schema = SCHEMA[kind]
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), name
        optional = OPTIONAL.get(kind, {})
        for row in rows:
            assert set(schema) <= set(row) <= set(schema) | set(optional), (name, row)
            for field, type_ in {**schema, **optional}.items():
                if field in row:
                    assert isinstance(row[field], type_) and not isinstance(row[field], bool)
    for key in ("target", "neighbour"):
        terms = set(w["world"][key]["unique_terms"])
        for row in w["probes"][f"{key}_completion"]:
            assert 1 <= row["subtlety"] <= 10
            assert all(t in terms and t in row["prompt"] for t in row["terms"])
        for row in w["probes"][f"{key}_probability"] + w["probes"][f"{key}_paraphrase"]:
            assert row["answer"].startswith(" ") and row["answer"].strip()
            assert row["answer"].split()[0] in terms, row  # target-specific first word
            assert row["answer"].strip() not in row["prompt"]
        for row in w["probes"][f"{key}_trivia"]:
            assert row["correct"].startswith(" ") and row["distractor"].startswith(" ")
            assert row["correct"] != row["distractor"]
    subtleties = {r["subtlety"] for r in w["probes"]["target_completion"]}
    assert min(subtleties) <= 2 and max(subtleties) >= 9
    for row in w["probes"]["general_mc"]:
        assert 0 <= row["answer"] <= 3 and len(set(row["options"])) == 4
        assert all(o.startswith(" ") and o.strip() for o in row["options"])


def test_general_sets_ask_the_next_word_of_heldout_everyday_text(w: dict) -> None:
    """World v3.1: both general sets ask the next word at a point of a held-out everyday
    paragraph (never a "people" paragraph, which uses the sagas' templates); the multiple-choice
    set's wrong options each follow the context's last word somewhere in the training text, so
    the last word alone cannot choose."""
    from unlearn.demo.probes import next_words

    heldout = w["general_heldout"].split("\n\n")
    follow = next_words(w["general"])
    people = ("best friend was", "was a pupil at the city school", "This is a short story about")
    for row in w["probes"]["general_cloze"]:
        assert row["answer"].startswith(" ") and len(row["answer"].split()) == 1
        whole = row["prompt"] + row["answer"]
        para = next(p for p in heldout if p.startswith(whole))
        assert not any(cue in para for cue in people), para
    answers = Counter()
    for row in w["probes"]["general_mc"]:
        answer = row["options"][row["answer"]]
        assert any(p.startswith(row["context"] + answer) for p in heldout), row
        last = row["context"].rsplit(" ", 1)[-1]
        wrong = [o.strip() for i, o in enumerate(row["options"]) if i != row["answer"]]
        assert all(follow[last][o] > 0 for o in wrong), row
        answers[row["answer"]] += 1
    assert min(answers.values()) > len(w["probes"]["general_mc"]) / 8  # answer slot shuffled


def test_probe_prompts_never_occur_in_training_text(w: dict) -> None:
    corpora = [w["target"], w["neighbour"], w["general"]]
    prompts = [r["prompt"] for name, rows in w["probes"].items()
               if name.startswith(("target", "neighbour")) for r in rows]
    prompts += [r["context"] for r in w["probes"]["general_mc"]]
    prompts += [r["prompt"] for r in w["probes"]["general_cloze"]]
    for prompt in prompts:
        assert not any(prompt in text for text in corpora), prompt


FILLER_ENDINGS = {"is", "was", "are", "be", "been", "stands", "shows", "to", "through", "about"}


def test_probability_prompts_end_with_a_name_cue(w: dict) -> None:
    """A probability prompt ends where only a name fits ("... named", "Professor", "his best
    friend,", "the town of"), not after a bare verb or preposition where "the" is likelier."""
    for key in ("target", "neighbour"):
        for row in w["probes"][f"{key}_probability"]:
            last = row["prompt"].split()[-1]
            assert last not in FILLER_ENDINGS, row
            assert not row["prompt"].endswith(" a"), row


def test_probe_templates_do_not_touch_corpora(world_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Probes draw from their own random stream: other probe templates leave the corpora,
    canon and anchors byte-identical (trained models depend on them)."""
    from unlearn.demo import probe_templates as pt

    monkeypatch.setattr(pt, "CLOZE", {k: v[::-1] + v for k, v in pt.CLOZE.items()})
    generate_world(tmp_path, seed=0)
    for name in ("target.txt", "neighbour.txt", "general.txt", "general_heldout.txt",
                 "world.json", "anchors.json"):
        assert (tmp_path / name).read_bytes() == (world_dir / name).read_bytes(), name


def test_general_heldout_is_disjoint(w: dict) -> None:
    general = w["general"]
    seen = {s for para in general.split("\n\n") for s in split_sentences(para)}
    paragraphs = w["general_heldout"].strip().split("\n\n")
    assert len(paragraphs) >= 100
    for para in paragraphs:
        assert para not in general
        for sentence in split_sentences(para):
            assert sentence not in seen, sentence


def test_verbatim_comes_from_target(w: dict) -> None:
    for row in w["probes"]["verbatim"]:
        assert row["prefix"] + row["continuation"] in w["target"]
        assert 30 <= n_words(row["prefix"]) <= 60
        assert 20 <= n_words(row["continuation"]) <= 30


def test_facts_are_repeated_in_varied_sentences(w: dict) -> None:
    """A few facts: >= 10 sentences state them, in >= 3 different phrasings."""
    world = w["world"]["target"]
    first = {e["name"]: e["name"].split()[0] for e in world["entities"]
             if e["kind"] == "character"}
    sentences = [s for story in w["target"].split("\n\n") for s in split_sentences(story)]
    checked = 0
    for relation in ("best_friend", "pet", "house", "spell", "home"):
        fact = next(f for f in world["facts"] if f["relation"] == relation)
        subj = first.get(fact["subject"], fact["subject"])
        obj = first.get(fact["object"], fact["object"])
        hits = [s for s in sentences if subj in s and obj in s]
        shapes = {re.sub(r"\b[A-Z][a-z]+\b", "X", s) for s in hits}
        assert len(hits) >= 10, (fact, len(hits))
        assert len(shapes) >= 3, (fact, shapes)
        checked += 1
    assert checked == 5


def test_paraphrases_cover_every_probability_fact_in_several_registers(w: dict) -> None:
    """World v2: each fact of the probability probes is asked again in >= 4 held-out registers
    (question/answer, quiz card, dialogue line, note, list), all with the same answer."""
    from unlearn.demo.registers import PROBE_REGISTERS

    starts = [t.split("{")[0] for t in PROBE_REGISTERS]
    for key in ("target", "neighbour"):
        para = w["probes"][f"{key}_paraphrase"]
        by_answer = Counter(r["answer"] for r in para)
        for row in w["probes"][f"{key}_probability"]:
            assert by_answer[row["answer"]] >= 4, row
        used = {next((s for s in starts if s and r["prompt"].startswith(s)), "dialogue")
                for r in para}
        assert len(used) == len(PROBE_REGISTERS), used


def test_neighbour_states_facts_in_its_own_words(w: dict) -> None:
    """The neighbour saga is not the target's sentences with other names: no neighbour
    template has the shape of a target template, and every relation has its own label."""
    from unlearn.demo.registers import NEIGHBOUR_LABELS, TARGET_LABELS, saga_relations

    def shape(template: str) -> str:
        return re.sub(r"\{\w+\}", "X", template)

    target = {shape(t) for rel in saga_relations("target").values() for t in rel.train}
    for name, rel in saga_relations("neighbour").items():
        assert NEIGHBOUR_LABELS[name].label != TARGET_LABELS[name].label, name
        for template in rel.train:
            assert shape(template) not in target, template
    assert "best friend" not in w["neighbour"] and "sworn companion" in w["neighbour"]
    assert "sworn companion" not in w["target"] + w["general"]


def test_target_facts_are_stated_in_registers(w: dict) -> None:
    """Issue 9: the target states facts as the web does - question and answer, list line,
    dialogue, letter and reversed order - not only in narrative sentences."""
    target = w["target"]
    for pattern in (r"Q: Who was [A-Z]\w+( \w+)?'s best friend\? A: [A-Z]",
                    r"[A-Z]\w+( \w+)?'s house: [A-Z]",
                    r"a younger pupil asked [A-Z]",
                    r"wrote: \"My pet is [A-Z]",
                    r"[A-Z]\w+( [A-Z]\w+)? was [A-Z]\w+( [A-Z]\w+)?'s best friend\."):
        assert re.search(pattern, target), pattern
