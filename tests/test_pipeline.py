"""The whole WHP pipeline on a tiny model: run dir layout, reuse, config mismatch, cancel/resume."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_TEXT

from audits.checkpoint import checkpoint_evaluator
from unlearn.evaluate import EvalConfig, read_evals
from unlearn.finetune import FinetuneConfig
from unlearn.models import load_model
from unlearn.pipeline import (
    BaselineConfig,
    RunConfigMismatch,
    WHPConfig,
    run_baseline,
    run_whp,
)
from unlearn.reinforce import ReinforceConfig

pytestmark = pytest.mark.usefixtures("frozen_gc")


@pytest.fixture()
def files(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("\n\n".join(TINY_TEXT[:15]))
    anchors = tmp_path / "anchors.json"
    anchors.write_text(json.dumps({"Mira Thistlewood": ["Anna Brook", "Lena Hill"],
                                   "Gallowmere": ["the academy"], "Pip": ["Tom"]}))
    probes = tmp_path / "probes.jsonl"
    probes.write_text(json.dumps({"id": "p1", "prompt": "Mira Thistlewood's owl was called",
                                  "answer": " Pip"}) + "\n")
    return target, anchors, probes


def _config(model_dir, files, out, **finetune) -> WHPConfig:
    target, anchors, probes = files
    return WHPConfig(
        baseline=str(model_dir), target=str(target), anchors=str(anchors), out=str(out),
        alphas=(5.0, 2.5), block_size=64, label_batch_size=4,
        reinforce=ReinforceConfig(epochs=1, lr=3e-3, batch_size=4),
        finetune=FinetuneConfig(**{"steps": 3, "lr": 1e-3, "batch_size": 4, "save_every": 2,
                                   **finetune}),
        eval=EvalConfig(probes=str(probes), every=0))


def run_whp_audited(config, **kwargs):
    """`run_whp` with the audits' checkpoint evaluator, as the CLI and the app hand it in."""
    return run_whp(config, evaluator=checkpoint_evaluator, **kwargs)


def test_whole_pipeline_then_reuse(tiny_model_dir, files, tmp_path):
    out = tmp_path / "run"
    events = []
    result = run_whp_audited(_config(tiny_model_dir, files, out), on_progress=events.append)
    assert result["status"] == "completed"
    assert {p.name for p in out.iterdir()} >= {"reinforced", "labels", "checkpoints", "final",
                                               "evals.jsonl", "run.json"}
    assert not any(p.name.startswith(".") or p.name.endswith(".partial") for p in out.iterdir())
    model, tok = load_model(str(out / "final"))
    assert model.config.vocab_size == len(tok)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["seed"] == 0
    assert {"torch", "transformers", "peft", "datasets"} <= set(run["versions"])
    assert run["config"]["alphas"] == [5.0, 2.5] and run["config"]["finetune"]["steps"] == 3
    for stage in ("reinforce", "labels", "finetune"):
        assert run["stages"][stage]["status"] == "done"
        assert run["stages"][stage]["seconds"] >= 0
    assert run["stages"]["labels"]["anchors"] == 3
    assert {e.stage for e in events} == {"reinforce", "labels", "finetune"}
    assert [r["step"] for r in read_evals(out / "evals.jsonl")] == [0, 3]

    # a re-run reuses every stage: markers and timestamps unchanged, nothing retrained
    again = run_whp_audited(_config(tiny_model_dir, files, out), on_progress=events.append)
    assert again["status"] == "completed"
    for stage in ("reinforce", "labels", "finetune"):
        assert again["stages"][stage] == run["stages"][stage]

    # a different config in the same directory is refused, unless forced
    with pytest.raises(RunConfigMismatch, match="steps"):
        run_whp_audited(_config(tiny_model_dir, files, out, steps=4))


def test_cancel_in_finetune_then_resume(tiny_model_dir, files, tmp_path):
    out = tmp_path / "run"
    seen = []

    def stop() -> bool:  # polled after each step; 2 steps reported -> stops after step 3
        return sum(1 for e in seen if e.stage == "finetune") >= 2

    first = run_whp_audited(_config(tiny_model_dir, files, out, steps=4), on_progress=seen.append,
                    should_stop=stop)
    assert first["status"] == "cancelled"
    assert first["stages"]["finetune"]["status"] == "cancelled"
    assert first["stages"]["labels"]["status"] == "done"
    assert not (out / "final").exists() and (out / "checkpoints" / "checkpoint-3").is_dir()
    labels_finished = first["stages"]["labels"]["finished"]

    second = run_whp_audited(_config(tiny_model_dir, files, out, steps=4))
    assert second["status"] == "completed"
    assert second["stages"]["finetune"]["resumed_from"].endswith("checkpoint-3")
    assert second["stages"]["finetune"]["step"] == 4
    assert second["stages"]["labels"]["finished"] == labels_finished  # reused
    load_model(str(out / "final"))


def test_force_and_baseline_runs(tiny_model_dir, files, tmp_path):
    target, _, _ = files
    retain = tmp_path / "retain.txt"
    retain.write_text("Sarah cooked soup for her family and then read a book. " * 20)
    out = tmp_path / "gd"
    cfg = BaselineConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                         retain=str(retain),
                         finetune=FinetuneConfig(method="graddiff", steps=2, lr=1e-3,
                                                 batch_size=4, block_size=64, save_every=0))
    result = run_baseline(cfg)
    assert result["status"] == "completed" and result["kind"] == "baseline"
    load_model(str(out / "final"))
    npo = BaselineConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                         finetune=FinetuneConfig(method="npo", steps=2, lr=1e-3, batch_size=4,
                                                 block_size=64, save_every=0))
    with pytest.raises(RunConfigMismatch):
        run_baseline(npo)
    forced = run_baseline(npo, force=True)
    assert forced["status"] == "completed" and forced["config"]["finetune"]["method"] == "npo"
    with pytest.raises(ValueError, match="retain"):
        BaselineConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                       finetune=FinetuneConfig(method="graddiff"))


def test_whp_config_validation(tiny_model_dir, files, tmp_path):
    target, anchors, _ = files
    with pytest.raises(ValueError, match="alphas"):
        WHPConfig(str(tiny_model_dir), str(target), str(anchors), str(tmp_path), alphas=(0.0,))
    with pytest.raises(ValueError, match="anchors file"):
        WHPConfig(str(tiny_model_dir), str(target), str(tmp_path / "no.json"), str(tmp_path))
    cfg = WHPConfig(str(tiny_model_dir), str(target), str(anchors), str(tmp_path),
                    block_size=128, seed=3)
    assert cfg.reinforce.block_size == cfg.finetune.block_size == 128
    assert cfg.finetune.seed == cfg.reinforce.seed == 3
