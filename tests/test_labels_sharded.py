"""Generic labels split across processes (`accelerate launch`) equal the one-process labels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, demo_model_dir

from unlearn.label_store import ShardStore, load_labels

DEMO = ROOT / "assets" / "demo"


def _labels_args(out, *extra) -> list[str]:
    # ~600 tokens of the demo target in 64-token blocks (about 10), shards of 2 blocks
    return ["-m", "unlearn", "labels", "--baseline", str(demo_model_dir("baseline")),
            "--reinforced", str(demo_model_dir("reference")), "--target", str(DEMO / "target.txt"),
            "--anchors", str(DEMO / "anchors.json"), "--out", str(out), "--block-size", "64",
            "--batch-size", "2", "--shard-size", "2", "--max-target-tokens", "600",
            "--device", "cpu", *extra]


@pytest.mark.slow
def test_two_processes_give_the_one_process_labels(tmp_path):
    """2 CPU processes (gloo) through `accelerate launch --multi_gpu` (see
    benchmarks/accelerate_finetune.md for why not `--cpu`) against one plain process."""
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    one = subprocess.run([sys.executable, *_labels_args(tmp_path / "one")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         *_labels_args(tmp_path / "two")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    ds_one, ds_two = load_labels(tmp_path / "one"), load_labels(tmp_path / "two")
    n = len(ds_one)
    assert n >= 5  # enough blocks for both processes to take several shards
    assert two.stdout.count(f"labels for {n} blocks saved") == 1  # the main process only

    meta_one = json.loads((tmp_path / "one" / "whp_labels.json").read_text())
    meta_two = json.loads((tmp_path / "two" / "whp_labels.json").read_text())
    assert meta_one["processes"] == 1 and meta_two["processes"] == 2
    # shards of 2 blocks dealt in turn: process 0 has blocks 0-1, 4-5, ...; process 1 has 2-3, ...
    assert meta_two["blocks_per_process"] == [sum(b % 4 < 2 for b in range(n)),
                                              sum(b % 4 >= 2 for b in range(n))]
    assert meta_two["fingerprint"] == meta_one["fingerprint"]
    assert meta_two["trained_positions"] == meta_one["trained_positions"] > 0
    assert meta_two["terms_translated_this_run"] == meta_one["terms_translated_this_run"] > 0
    assert ds_two["block"] == list(range(n))
    assert ds_two.to_dict() == ds_one.to_dict()
    assert not (tmp_path / "two.partial").exists()


def test_publish_refuses_shards_that_do_not_cover_the_text(tmp_path):
    """A merge with a process's shards missing is an error, not a short dataset."""
    out = tmp_path / "labels"
    store = ShardStore(out, "f", total=4, alphas=(5.0,), shard_size=2)
    row = {"input_ids": [1, 2], "attention_mask": [1, 1], "labels_alpha_5": [-100, 2]}
    store.add([{**row, "block": 0}, {**row, "block": 1}])  # blocks 2-3 (the other process) missing
    assert store.done == {0, 1}
    with pytest.raises(RuntimeError, match="do not cover blocks 0..3"):
        store.publish(out, {})
    # a second process's store sees the first one's shard on disk, and adds its own
    other = ShardStore(out, "f", total=4, alphas=(5.0,), shard_size=2, clean=False)
    assert other.done == {0, 1}
    other.add([{**row, "block": 2}, {**row, "block": 3}])
    assert store.publish(out, {})["block"] == [0, 1, 2, 3]
    assert not (tmp_path / "labels.partial").exists()


def test_a_new_job_clears_another_jobs_shards(tmp_path):
    out = tmp_path / "labels"
    row = {"input_ids": [1], "attention_mask": [1], "labels_alpha_5": [-100], "block": 0}
    ShardStore(out, "f", total=2, alphas=(5.0,), shard_size=1).add([row])
    assert ShardStore(out, "f", total=2, alphas=(5.0,), shard_size=1).done == {0}  # resumed
    assert ShardStore(out, "g", total=2, alphas=(5.0,), shard_size=1).done == set()  # other job
    assert not any((tmp_path / "labels.partial" / "shards").iterdir())
