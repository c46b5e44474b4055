"""The whole WHP pipeline on a tiny model: run dir layout, reuse, config mismatch, cancel/resume."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_TEXT

from audits.checkpoint import checkpoint_evaluator
from unlearn.evaluate import EvalConfig, read_evals
from unlearn.finetune import FinetuneConfig
from unlearn.label_runner import LabelConfig
from unlearn.models import load_model
from unlearn.pipeline import ComparisonConfig, WHPConfig, run_comparison, run_whp
from unlearn.reinforce import ReinforceConfig
from unlearn.run_dir import RunConfigMismatch, list_runs

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
        block_size=64, labels=LabelConfig(alphas=(5.0, 2.5), batch_size=4),
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
    assert run["config"]["labels"]["alphas"] == [5.0, 2.5]
    assert run["config"]["finetune"]["steps"] == 3
    # shared fields are recorded as every stage ran with them
    assert {run["config"][s]["block_size"] for s in ("reinforce", "labels", "finetune")} == {64}
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


def test_force_and_comparison_runs(tiny_model_dir, files, tmp_path):
    target, _, _ = files
    retain = tmp_path / "retain.txt"
    retain.write_text("Sarah cooked soup for her family and then read a book. " * 20)
    out = tmp_path / "gd"
    cfg = ComparisonConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                         retain=str(retain),
                         finetune=FinetuneConfig(method="graddiff", steps=2, lr=1e-3,
                                                 batch_size=4, block_size=64, save_every=0))
    result = run_comparison(cfg)
    assert result["status"] == "completed" and result["kind"] == "comparison"
    listed = list_runs(tmp_path)
    assert [(r["run"], r["kind"], r["final"]) for r in listed] == [(str(out), "comparison", True)]
    load_model(str(out / "final"))
    npo = ComparisonConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                         finetune=FinetuneConfig(method="npo", steps=2, lr=1e-3, batch_size=4,
                                                 block_size=64, save_every=0))
    with pytest.raises(RunConfigMismatch):
        run_comparison(npo)
    forced = run_comparison(npo, force=True)
    assert forced["status"] == "completed" and forced["config"]["finetune"]["method"] == "npo"
    with pytest.raises(ValueError, match="retain"):
        ComparisonConfig(baseline=str(tiny_model_dir), target=str(target), out=str(out),
                       finetune=FinetuneConfig(method="graddiff"))


def test_whp_config_validation(tiny_model_dir, files, tmp_path):
    target, anchors, _ = files
    with pytest.raises(ValueError, match="alphas"):
        LabelConfig(alphas=(0.0,))
    missing = WHPConfig(str(tiny_model_dir), str(target), str(tmp_path / "no.json"),
                        str(tmp_path))  # no file I/O at construction
    with pytest.raises(ValueError, match="anchors file"):
        missing.check_inputs()
    with pytest.raises(ValueError, match="anchors file"):
        run_whp(missing)
    cfg = WHPConfig(str(tiny_model_dir), str(target), str(anchors), str(tmp_path),
                    block_size=128, seed=3, device="cpu")
    stages = cfg.stages("paragraphs")
    assert {s.block_size for s in stages.values()} == {128}
    assert {s.seed for s in stages.values()} == {3}
    assert stages["reinforce"].text_format == stages["labels"].text_format == "paragraphs"
    assert cfg.reinforce.block_size == 512  # the nested configs are not written into
    with pytest.raises(ValueError, match="reinforce.block_size=64 conflicts"):
        WHPConfig(str(tiny_model_dir), str(target), str(anchors), str(tmp_path),
                  block_size=128, reinforce=ReinforceConfig(block_size=64))
    with pytest.raises(ValueError, match="method='whp'"):
        WHPConfig(str(tiny_model_dir), str(target), str(anchors), str(tmp_path),
                  finetune=FinetuneConfig(method="ga"))
