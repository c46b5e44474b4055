"""The FSDP and DeepSpeed ZeRO-3 accelerate configs for Llama-2-7B (configs/accelerate/): they
parse as accelerate parses them, and the FSDP one shards the demo Llama on 2 CPU processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import ROOT, demo_model_dir

CONFIGS = ROOT / "configs" / "accelerate"


def test_configs_parse_as_accelerate_reads_them():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType
    from transformers.models.llama import modeling_llama

    fsdp = load_config_from_file(str(CONFIGS / "fsdp_llama2_7b.yaml"))
    assert fsdp.distributed_type == DistributedType.FSDP
    assert fsdp.fsdp_config["fsdp_version"] == 2
    layer = fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
    assert hasattr(modeling_llama, layer)  # the class Llama-2 models are built from

    ds = load_config_from_file(str(CONFIGS / "deepspeed_zero3.yaml"))
    assert ds.distributed_type == DistributedType.DEEPSPEED
    path = ROOT / ds.deepspeed_config["deepspeed_config_file"]  # relative to the repository root
    zero = json.loads(path.read_text())["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # the final save needs it


@pytest.mark.slow
def test_fsdp_config_dry_run_on_two_cpu_processes(tmp_path):
    """scripts/fsdp_cpu_dry_run.py under the 7B FSDP config: two sharded steps must match one
    unsharded process (it prints DRY RUN OK or exits 1)."""
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not installed")
    from unlearn.anchors import filter_redundant, load_anchors
    from unlearn.data import read_text, truncate_text
    from unlearn.label_runner import LabelConfig, compute_labels
    from unlearn.models import load_model

    base, tok = load_model(str(demo_model_dir("baseline")))
    reinforced, _ = load_model(str(demo_model_dir("reference")))
    anchors, _ = filter_redundant(load_anchors(ROOT / "assets" / "demo" / "anchors.json"))
    text = truncate_text(tok, read_text(ROOT / "assets" / "demo" / "target.txt"), 600)
    compute_labels(base, reinforced, tok, text, anchors,
                   LabelConfig(block_size=64, text_format="paragraphs"), tmp_path / "labels")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        ["accelerate", "launch", "--config_file", str(CONFIGS / "fsdp_llama2_7b.yaml"),
         "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0",
         str(ROOT / "scripts" / "fsdp_cpu_dry_run.py"), "--labels", str(tmp_path / "labels")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "fsdp_version=2" in proc.stdout and "layers=['LlamaDecoderLayer']" in proc.stdout
    assert "this process holds" in proc.stdout and "(0.50)" in proc.stdout
    assert "DRY RUN OK" in proc.stdout
