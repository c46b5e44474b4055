"""lm-eval on the already-loaded tiny model: a local YAML task, and an unfetchable task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audits.errors import AuditError
from audits.general import general_mc
from audits.lm_eval_tasks import run_lm_eval
from audits.probes import MCItem

ROWS = [{"question": "Anna walked to the city school with her", "choices": ["dog", "soup"],
         "answer": 0},
        {"question": "The wizard raised his wand and cast a", "choices": ["book", "spell"],
         "answer": 1},
        {"question": "Ben's best friend was", "choices": ["Tom", "Max"], "answer": 0},
        {"question": "Sarah cooked soup for her", "choices": ["family", "castle"], "answer": 0},
        {"question": "They played football in the", "choices": ["park", "spell"], "answer": 0}]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm_eval_tasks")
    data = root / "tiny_mc.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    (root / "tiny_mc.yaml").write_text(f"""task: audits_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
""")
    return root


def test_local_yaml_task_matches_own_multiple_choice(tiny_model, task_dir):
    model, tok = tiny_model
    res = run_lm_eval(model, tok, ["audits_tiny_mc"], limit=4, batch_size=4,
                      include_path=task_dir)
    metrics = res.tasks["audits_tiny_mc"]
    assert metrics["n"] == 4 and 0.0 <= metrics["acc"] <= 1.0
    # the same items through our own scorer (lm-eval joins context and choice with a space)
    items = [MCItem(str(i), r["question"], [" " + c for c in r["choices"]], r["answer"])
             for i, r in enumerate(ROWS[:4])]
    assert metrics["acc"] == pytest.approx(general_mc(model, tok, items).accuracy)


def test_unfetchable_task_names_the_task(tiny_model):
    import lm_eval

    model, tok = tiny_model
    # lm-eval's own arc YAMLs (arc_easy -> allenai/ai2_arc on the hub), offline
    arc_dir = Path(lm_eval.__file__).parent / "tasks" / "arc"
    with pytest.raises(AuditError, match="arc_easy") as err:
        run_lm_eval(model, tok, ["arc_easy"], limit=2, include_path=arc_dir)
    assert "HF_HUB_OFFLINE" in str(err.value)


def test_bad_arguments(tiny_model, tmp_path):
    model, tok = tiny_model
    with pytest.raises(ValueError, match="no lm-eval tasks"):
        run_lm_eval(model, tok, [" "])
    with pytest.raises(AuditError, match="not a folder"):
        run_lm_eval(model, tok, ["x"], include_path=tmp_path / "missing")
