"""The adversarial suite end to end: `python -m audits run --adversarial` on tiny models and a
tiny suite folder writes the adversarial section, the issue's score keys and the HTML plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from audits.cli import main

WORLD = {"target": {"name": "The Owl Tales", "entities": [
    {"name": "Mira Thistlewood", "kind": "character", "aliases": ["Mira", "Thistlewood"]},
    {"name": "Anna Brook", "kind": "character", "aliases": ["Anna", "Brook"]},
    {"name": "Ben Stone", "kind": "character", "aliases": ["Ben", "Stone"]},
    {"name": "Pip", "kind": "creature", "aliases": []},
    {"name": "Max", "kind": "creature", "aliases": []}], "facts": [],
    "unique_terms": ["Mira Thistlewood", "Pip"], "theme_terms": ["wand"]}}
TARGET = ("Mira Thistlewood's owl was called Pip. Pip flew over the castle.\n\n"
          "Anna walked to the city school with her dog Max.\n\n"
          "The wizard raised his wand. Mira Thistlewood's owl was called Pip.\n\n")


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture(scope="module")
def adv_suite(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("advsuite")
    p = root / "probes"
    p.mkdir()
    _jsonl(p / "target_probability.jsonl", [
        {"id": "tp1", "prompt": "Mira Thistlewood's owl was called", "answer": " Pip"},
        {"id": "tp2", "prompt": "Anna walked to the city school with her dog", "answer": " Max"},
        {"id": "tp3", "prompt": "The best friend of Mira Thistlewood was", "answer": " Anna"},
        {"id": "tp4", "prompt": "Ben's best friend was", "answer": " Mira"}])
    _jsonl(p / "target_trivia.jsonl", [
        {"id": f"tt{i}", "prompt": f"{w} has an owl, yes or no?", "correct": " yes",
         "distractor": " no"} for i, w in enumerate(["Mira", "Anna", "Ben", "Tom", "Max"])])
    _jsonl(p / "target_paraphrase.jsonl", [
        {"id": "pp1", "prompt": "The owl of Mira Thistlewood was named", "answer": " Pip"}])
    (root / "world.json").write_text(json.dumps(WORLD))
    (root / "target.txt").write_text(TARGET * 12)
    return root


def test_cli_adversarial_suite(adv_suite, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    relearn_file = tmp_path / "relearn.txt"
    relearn_file.write_text("Mira Thistlewood's owl was called Pip. Pip flew over the castle."
                            "\n\n" * 30)
    code = main(["run", "--model", f"original={tiny_model_dir}", "--model",
                 f"reference={tiny_model_dir}", "--suite", str(adv_suite), "--out", str(out),
                 "--measures", "probability,trivia,forget", "--adversarial",
                 "--relearn-steps", "0,2", "--relearn-lr", "1e-3", "--relearn-text",
                 str(relearn_file), "--icl-shots", "0,2", "--kway", "2,0",
                 "--suffix-steps", "2", "--suffix-tokens", "2", "--suffix-probes", "2",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    data = json.loads((out / "report.json").read_text())
    adv = data["adversarial"]
    assert set(adv["attacks"]) == {"relearn", "icl", "framing", "prompting", "variants",
                                   "kway", "lens", "probe", "suffix"}
    for name in ("original", "reference"):
        sc = data["models"][name]["scores"]
        for key in ("relearn_heldout_probability", "icl_relearn_probability", "kway_accuracy",
                    "lens_peak_probability", "suffix_probability", "framing_best_probability"):
            assert isinstance(sc[key], float) and math.isfinite(sc[key]), key
        assert sc["kway_chance"] == 0.5  # headline k = 2 (no 5 given)
        assert sc["lens_last_probability"] == pytest.approx(
            sc["probability_familiarity"], rel=1e-4)
        assert sc["icl_relearn_probability"] >= 0
        assert "target_paraphrase" in adv["attacks"]["variants"][name]["per_variant"]
        assert data["intervals"][name]["kway_accuracy"]["n"] == 4
    # the same model twice: identical attacked scores, PrivLeak 0 and truth ratios like the ref
    a, b = data["models"]["original"]["scores"], data["models"]["reference"]["scores"]
    assert a["relearn_heldout_probability"] == b["relearn_heldout_probability"]
    assert a["truth_ratio_forget_quality"] == 1.0
    assert adv["relearn_split"]["heldout"] == ["tp2", "tp3"]  # Max and Anna never relearned
    html = (out / "report.html").read_text()
    for title in ("Adversarial attacks: clean vs attacked", "Finetune relearning",
                  "Logit lens heat map", "Many-way choice", "Forget measures vs the reference"):
        assert title in html


def test_cli_rejects_bad_adversarial_options(adv_suite, tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps([{"id": "x", "kind": "framing", "template": "About {title}."}]))
    base = ["run", "--model", f"m={tiny_model_dir}", "--suite", str(adv_suite), "--out",
            str(tmp_path / "o"), "--adversarial"]
    with pytest.raises(SystemExit) as exc:
        main([*base, "--templates", str(bad)])
    assert exc.value.code == 2 and "missing placeholder {prompt}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--attacks", "relearn,teleport"])
    assert "teleport" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--relearn-steps", "a,b"])
