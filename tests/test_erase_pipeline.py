"""ERASE end to end on real tiny models: task contract, scoring, selection, CLI, SISA, cost math."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ASSETS
from unlearn.demo.tasks import SPECS, make_task, write_tasks
from unlearn.erase import cli
from unlearn.erase.cost import (
    UnitCosts,
    break_even_queries,
    icl_total,
    llama2_7b_estimate,
    sisa_total,
)
from unlearn.erase.evaluate import continuation_logprobs
from unlearn.erase.select import autocot_ids, random_ids
from unlearn.erase.task import TaskError, load_task


@pytest.fixture(scope="module")
def small_task(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tasks")
    write_tasks(out, n_train=40, n_test=8, seed=0)
    return out / "colours"


def test_demo_tasks_follow_the_contract_and_are_reproducible(tmp_path):
    for spec in SPECS:
        task = load_task(ASSETS / "demo" / "tasks" / spec.name)
        assert len(task.train) >= 1000 and len(task.test) >= 200
        assert not {e.input for e in task.train} & {e.input for e in task.test}
        meta = json.loads((ASSETS / "demo" / "tasks" / spec.name / "task.json").read_text())
        for ex in task.train[:50] + task.test[:50]:  # the label follows from the key word
            key = next(k for k in meta["keys"] if f" {k} " in f" {ex.input} ")
            assert meta["keys"][key] == ex.output
    meta, train, _ = make_task(SPECS[0], 1200, 240, seed=0)
    committed = (ASSETS / "demo" / "tasks" / "colours" / "train.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in committed] == train


def test_prompt_format_and_bad_folders(small_task, tmp_path):
    task = load_task(small_task)
    text = task.context(task.train[:2], "in the park on Monday, the old hat")
    lines = text.split("\n")
    assert len(lines) == 3 and lines[0] == f"{task.train[0].input} is {task.train[0].output}"
    assert lines[2] == "in the park on Monday, the old hat is"
    assert task.key_of("in the park on Monday, the old hat") == "hat"
    key = task.key_of(task.test[0].input)
    same = [ex for ex in task.test if task.key_of(ex.input) == key]
    assert task.recall_ceiling([same[0]], task.test) == pytest.approx(len(same) / len(task.test))
    with pytest.raises(TaskError, match="no task.json"):
        load_task(tmp_path)
    (tmp_path / "task.json").write_text(json.dumps({"name": "x", "prompt": "{input}",
                                                    "answer": " {output}", "separator": "\n",
                                                    "labels": ["a", "b"]}))
    (tmp_path / "train.jsonl").write_text('{"id": "1", "input": "q", "output": "c"}\n')
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(TaskError, match="not one of the task labels"):
        load_task(tmp_path)


def test_continuation_scores_match_a_plain_forward_pass(tiny_model_dir):
    from unlearn.models import load_model

    model, tok = load_model(str(tiny_model_dir))
    contexts, conts = ["Anna walked to the", "The wizard raised"], [" park", " his wand"]
    got = continuation_logprobs(model, tok, contexts, conts, batch_size=3)
    for i, ctx in enumerate(contexts):
        for j, cont in enumerate(conts):
            c = tok.encode(ctx)
            a = tok.encode(cont, add_special_tokens=False)
            with torch.inference_mode():
                logp = torch.log_softmax(model(torch.tensor([c + a])).logits[0].float(), -1)
            expected = sum(logp[len(c) - 1 + n, t].item() for n, t in enumerate(a))
            assert got[i, j] == pytest.approx(expected, abs=1e-4)


def test_baseline_selections():
    x = np.concatenate([np.zeros((20, 2)), np.ones((20, 2)) * 10, np.ones((20, 2)) * -10])
    ids = [f"e{i}" for i in range(60)]
    picked = autocot_ids(x, ids, k=3, seed=0)
    assert sorted(int(i[1:]) // 20 for i in picked) == [0, 1, 2]  # one per blob
    assert random_ids(ids, 5, seed=1) == random_ids(ids, 5, seed=1)
    assert len(set(random_ids(ids, 5, seed=1))) == 5


def test_cli_select_delete_evaluate(tiny_model_dir, small_task, tmp_path, capsys):
    state = tmp_path / "state"
    common = ["--model", str(tiny_model_dir), "--task", str(small_task), "--k", "4",
              "--pca-dim", "4", "--eps", "1.0"]
    assert cli.main(["select", *common, "--state", str(state)]) == 0
    doc = json.loads((state / "state.json").read_text())
    assert len(doc["prompt_ids"]) == 4 and doc["n_alive"] == 40
    prompt_id = doc["prompt_ids"][0]
    other = next(i for i in doc["ids"] if i not in doc["prompt_ids"])
    assert cli.main(["delete", "--state", str(state), "--ids", f"{prompt_id},{other}"]) == 0
    doc = json.loads((state / "state.json").read_text())
    assert doc["n_alive"] == 38 and prompt_id not in doc["prompt_ids"]
    assert [r["action"] for r in doc["log"]][0] == "recompute"
    assert cli.main(["delete", "--state", str(state), "--ids", other]) == 2  # already gone
    err = capsys.readouterr().err
    assert f"already deleted): {other}\n" in err and "['" not in err  # plain words, no repr
    out = tmp_path / "acc.json"
    assert cli.main(["evaluate", *common, "--methods", "erase,random,autocot,zero-shot,sisa",
                     "--shards", "2", "--sisa-epochs", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["accuracy"]) == {"erase", "random", "autocot", "zero-shot", "sisa"}
    assert result["n_test"] == 8 and result["k"] == 4 and result["task"] == "colours"
    assert all(0 <= v <= 1 for v in result["accuracy"].values())
    assert result["key_coverage"]["zero-shot"] == 0.0
    with pytest.raises(SystemExit):
        cli.main(["evaluate", *common, "--methods", "erase,bogus", "--out", str(out)])


def test_cost_totals_and_break_even_by_hand():
    u = UnitCosts(select=10, certify=0.001, recompute=1.0, recompute_rate=0.01, icl_query=0.5,
                  shard_train=100, shards=4, sisa_query=0.2, source="hand")
    # deletion cost 0.01 * 1 + 0.99 * 0.001 = 0.01099
    assert icl_total(u, 100, 10) == pytest.approx(10 + 0.1099 + 50)
    assert sisa_total(u, 100, 10) == pytest.approx(400 + 1000 + 20)
    q = break_even_queries(u, 10)
    assert q == pytest.approx((1400 - 10.1099) / 0.3)
    assert icl_total(u, q, 10) == pytest.approx(sisa_total(u, q, 10))
    cheap_icl = UnitCosts(**{**u.as_dict(), "icl_query": 0.1})
    assert break_even_queries(cheap_icl, 10) is None  # ICL cheaper at every query count
    llama = llama2_7b_estimate(k=8, tokens_per_example=10, n_train=1000, shards=4, epochs=2)
    assert llama.icl_query == pytest.approx(2 * 6.74e9 * 90 / 1.25e14)
    assert "estimate" in llama.source


def test_cli_cost_writes_chart_and_numbers(tiny_model_dir, small_task, tmp_path):
    html, js = tmp_path / "cost.html", tmp_path / "cost.json"
    assert cli.main(["cost", "--model", str(tiny_model_dir), "--task", str(small_task),
                     "--k", "4", "--pca-dim", "4", "--shards", "2", "--sisa-epochs", "1",
                     "--deletions", "10", "--out-html", str(html), "--out-json", str(js)]) == 0
    data = json.loads(js.read_text())
    units = data["demo"]["unit_costs"]
    assert units["select"] > 0 and units["shard_train"] > 0 and units["icl_query"] > 0
    assert data["raw"]["deletions"] == 10
    assert "plotly" in html.read_text()
