"""`python -m unlearn whp|reinforce|labels|finetune|baseline`: end to end and usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, demo_model_dir

from unlearn.cli import main

DEMO = ROOT / "assets" / "demo"


pytestmark = pytest.mark.usefixtures("frozen_gc")


@pytest.fixture()
def target(tmp_path) -> Path:
    from conftest import TINY_TEXT

    path = tmp_path / "target.txt"
    path.write_text("\n\n".join(TINY_TEXT[:15]))
    return path


@pytest.fixture()
def anchors(tmp_path) -> Path:
    path = tmp_path / "anchors.json"
    path.write_text(json.dumps({"Mira": ["Anna"], "Gallowmere": ["the academy"],
                                "Pip": ["Tom"]}))
    return path


def _whp_args(model, target, anchors, out, *extra) -> list[str]:
    return ["whp", "--baseline", str(model), "--target", str(target), "--anchors", str(anchors),
            "--out", str(out), "--steps", "2", "--block-size", "64", "--batch-size", "4",
            "--reinforce-epochs", "1", "--lr", "1e-3", *extra]


@pytest.mark.parametrize("change, message", [
    (("--target", "/nonexistent/target.txt"), "file not found"),
    (("--alpha", "0"), "must be > 0"),
    (("--alpha", "-2.5"), "must be > 0"),
    (("--steps", "0"), "must be >= 1"),
    (("--quantization", "3bit"), "invalid choice"),
    (("--baseline", "/nonexistent/model"), "not a model folder"),
])
def test_usage_errors_exit_2(change, message, tiny_model_dir, target, anchors, tmp_path,
                             capsys):
    args = _whp_args(tiny_model_dir, target, anchors, tmp_path / "run")
    i = args.index(change[0]) if change[0] in args else len(args)
    args[i:i + 2] = list(change)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_usage_error_through_python_m_unlearn(tiny_model_dir, target, anchors, tmp_path):
    args = _whp_args(tiny_model_dir, target, anchors, tmp_path / "run", "--alpha", "0")
    proc = subprocess.run([sys.executable, "-m", "unlearn", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "--alpha: must be > 0" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_errors_other_commands(tiny_model_dir, target, tmp_path, capsys):
    assert main(["baseline", "--method", "dpo", "--baseline", str(tiny_model_dir),
                 "--target", str(target), "--out", str(tmp_path / "b")]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["baseline", "--method", "graddiff", "--baseline", str(tiny_model_dir),
                 "--target", str(target), "--out", str(tmp_path / "b")]) == 2
    assert "--retain" in capsys.readouterr().err
    assert main(["finetune", "--baseline", str(tiny_model_dir), "--labels", str(tmp_path),
                 "--out", str(tmp_path / "f")]) == 2
    assert "not a finished label dataset" in capsys.readouterr().err
    assert main(["whp"]) == 2
    assert "required" in capsys.readouterr().err


def test_whp_then_stage_commands(tiny_model_dir, target, anchors, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_whp_args(tiny_model_dir, target, anchors, out, "--alpha", "5",
                          "--alpha", "2.5", "--max-target-tokens", "200")) == 0
    captured = capsys.readouterr()
    assert "completed" in captured.out
    assert "finetune" in captured.err  # the per-stage progress bars
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["max_target_tokens"] == 200 and run["status"] == "completed"
    # same command again: reused; a different one: refused with exit 2 unless --force
    assert main(_whp_args(tiny_model_dir, target, anchors, out, "--alpha", "5",
                          "--alpha", "2.5", "--max-target-tokens", "200")) == 0
    assert main(_whp_args(tiny_model_dir, target, anchors, out)) == 2
    assert "different run" in capsys.readouterr().err
    # the stages as sub-commands, chained through their outputs
    assert main(["finetune", "--baseline", str(tiny_model_dir), "--labels", str(out / "labels"),
                 "--alpha", "2.5", "--out", str(tmp_path / "ft"), "--steps", "1",
                 "--block-size", "64", "--batch-size", "4", "--lora", "--lr", "1e-3"]) == 0
    assert (tmp_path / "ft" / "final" / "config.json").is_file()
    assert main(["reinforce", "--baseline", str(tiny_model_dir), "--target", str(target),
                 "--out", str(tmp_path / "reinf"), "--epochs", "1", "--block-size", "64",
                 "--max-target-tokens", "100"]) == 0
    assert main(["labels", "--baseline", str(tiny_model_dir), "--reinforced",
                 str(tmp_path / "reinf"), "--target", str(target), "--anchors", str(anchors),
                 "--out", str(tmp_path / "labels"), "--block-size", "64",
                 "--max-target-tokens", "100"]) == 0
    assert main(["baseline", "--method", "npo", "--baseline", str(tiny_model_dir),
                 "--target", str(target), "--out", str(tmp_path / "npo"), "--steps", "1",
                 "--block-size", "64", "--batch-size", "4"]) == 0
    assert (tmp_path / "npo" / "final" / "config.json").is_file()
    general = tmp_path / "general.txt"
    general.write_text("Sarah cooked soup for her family and then read a book. " * 30)
    assert main(["suggest", "--target", str(target), "--general", str(general),
                 "--baseline", str(tiny_model_dir), "--reinforced", str(out / "reinforced"),
                 "--top-k", "5", "--out", str(tmp_path / "cands.json")]) == 0
    cands = json.loads((tmp_path / "cands.json").read_text())
    assert set(cands) == {"frequency", "reinforcement"}
    assert cands["frequency"] and {"term", "score"} <= set(cands["frequency"][0])


def test_cli_end_to_end_on_demo_assets(tmp_path):
    baseline = demo_model_dir("baseline")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "unlearn", "whp", "--baseline", str(baseline),
         "--target", str(DEMO / "target.txt"), "--anchors", str(DEMO / "anchors.json"),
         "--out", str(out), "--steps", "2", "--block-size", "128", "--batch-size", "4",
         "--reinforce-epochs", "1", "--max-target-tokens", "2000",
         "--eval-probes", str(DEMO / "probes" / "target_probability.jsonl"),
         "--eval-text", str(DEMO / "general_heldout.txt"), "--eval-text-tokens", "1024",
         "--eval-every", "2", "--evaluator", "audits.checkpoint:checkpoint_evaluator"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 2] and "probability_familiarity" in evals[0]
    from unlearn.models import load_model

    load_model(str(out / "final"))
    run = json.loads((out / "run.json").read_text())
    assert all(run["stages"][s]["status"] == "done" for s in ("reinforce", "labels", "finetune"))
    steps = [json.loads(line)["step"] for line in (out / "evals.jsonl").read_text().splitlines()]
    assert steps == [0, 2]


@pytest.mark.slow
def test_finetune_under_accelerate_two_processes(tiny_model_dir, target, anchors, tmp_path):
    """DDP on CPU (gloo): `accelerate launch --multi_gpu --num_processes 2` on a CPU-only host.

    (`accelerate launch --cpu` always starts a single process in accelerate 1.x unless an MPI
    hostfile is given; see benchmarks/accelerate_finetune.md.)
    """
    import shutil

    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not installed")
    run = tmp_path / "whp"
    assert main(_whp_args(tiny_model_dir, target, anchors, run, "--steps", "1")) == 0
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "unlearn", "finetune",
         "--baseline", str(tiny_model_dir), "--labels", str(run / "labels"), "--out", str(out),
         "--steps", "2", "--batch-size", "2", "--block-size", "64", "--save-every", "2",
         "--lr", "1e-3", "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("completed") == 1  # one summary line: rank 0 only
    ckpt = out / "checkpoints" / "checkpoint-2"
    assert (ckpt / "rng_state_0.pth").is_file() and (ckpt / "rng_state_1.pth").is_file()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    from unlearn.models import load_model

    load_model(str(out / "final"))


@pytest.mark.parametrize("evaluator, message", [
    (None, "need --evaluator"),
    ("audits.checkpoint:no_such_function", "has no callable"),
    ("no_such_module:f", "cannot be imported"),
])
def test_checkpoint_evaluation_without_a_valid_evaluator_fails_before_any_stage(
        tmp_path, capsys, evaluator, message):
    from unlearn.cli import main

    out = tmp_path / "run"
    argv = ["whp", "--baseline", str(demo_model_dir("baseline")), "--target",
            str(DEMO / "target.txt"), "--anchors", str(DEMO / "anchors.json"), "--out", str(out),
            "--eval-probes", str(DEMO / "probes" / "target_probability.jsonl")]
    argv += ["--evaluator", evaluator] if evaluator else []
    code = main(argv)
    assert code == 2 and message in capsys.readouterr().err
    assert not (out / "reinforced").exists()


FLAGS_BEFORE_CONSOLIDATION = {  # every flag of eec04bc's CLI: each must keep parsing
    "whp": (
        "--alpha --anchors --baseline --batch-size --block-size --device --eval-every "
        "--eval-probes --eval-text --eval-text-tokens --force --grad-accum "
        "--label-batch-size --label-space --lora --lora-alpha --lora-r --lr "
        "--max-target-tokens --out --quantization --reinforce-epochs --reinforce-lr "
        "--save-every --seed --steps --target --text-format --warmup-steps "),
    "reinforce": (
        "--baseline --batch-size --block-size --device --epochs --lr "
        "--max-target-tokens --out --seed --target --text-format "),
    "labels": (
        "--alpha --anchors --baseline --batch-size --block-size --device "
        "--label-space --max-target-tokens --out --reinforced --seed --target "
        "--text-format "),
    "finetune": (
        "--alpha --baseline --batch-size --block-size --device --eval-every "
        "--eval-probes --eval-text --eval-text-tokens --force --grad-accum --labels "
        "--lora --lora-alpha --lora-r --lr --max-target-tokens --out --quantization "
        "--save-every --seed --steps --warmup-steps "),
    "baseline": (
        "--baseline --batch-size --block-size --device --eval-every --eval-probes "
        "--eval-text --eval-text-tokens --force --grad-accum --lora --lora-alpha "
        "--lora-r --lr --max-target-tokens --method --npo-beta --out --quantization "
        "--retain --retain-weight --save-every --seed --steps --target --text-format "
        "--warmup-steps "),
    "suggest": (
        "--baseline --device --general --out --reinforced --target --top-k "),
}


@pytest.mark.parametrize("command", sorted(FLAGS_BEFORE_CONSOLIDATION))
def test_every_earlier_flag_still_exists_and_help_works(command, capsys):
    from unlearn.cli import build_parser

    _, subs = build_parser()
    have = {o for a in subs[command]._actions for o in a.option_strings}
    assert set(FLAGS_BEFORE_CONSOLIDATION[command].split()) <= have
    assert main([command, "--help"]) == 0
    assert "usage:" in capsys.readouterr().out
