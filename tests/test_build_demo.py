"""`python -m unlearn build-demo` end to end at tiny scale (the full build takes ~20 minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearn.demo.build import MODEL_CORPORA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "unlearn", "build-demo", "--tiny", "--out", str(out),
         "--seed", "3", "--max-steps", "3", "--seq-len", "64", "--batch-size", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train baseline" in proc.stderr  # the progress bar is shown
    return out


def test_build_writes_world_models_and_manifest(tiny_build):
    from unlearn.models import load_model

    for name in ("world.json", "target.txt", "neighbour.txt", "general.txt",
                 "general_heldout.txt", "anchors.json"):
        assert (tiny_build / "demo" / name).stat().st_size > 0, name
    assert list((tiny_build / "demo" / "probes").glob("*.jsonl"))
    manifest = json.loads((tiny_build / "models" / "manifest.json").read_text())
    assert manifest["seed"] == 3
    assert set(manifest["models"]) == set(MODEL_CORPORA)
    assert manifest["models"]["reference"]["corpora"] == ["general", "neighbour"]
    assert "target" in manifest["models"]["baseline"]["corpora"]
    for key in ("world", "tokenizer", "train_baseline", "train_reference"):
        assert manifest["timings_seconds"][key] >= 0
    assert manifest["versions"]["torch"] == torch.__version__
    for name in MODEL_CORPORA:
        assert manifest["models"][name]["steps"] == 3
        model, tok = load_model(str(tiny_build / "models" / name))
        assert type(model).__name__ == "LlamaForCausalLM"
        assert (tiny_build / "models" / name / "model.safetensors").exists()
        assert tok.bos_token_id is not None and tok.eos_token_id is not None
        assert tok.pad_token_id is not None


def test_same_seed_same_initialisation_different_data(tiny_build):
    """Baseline and reference share recipe and seed; only the data differs, so weights differ."""
    from safetensors.torch import load_file

    a = load_file(tiny_build / "models" / "baseline" / "model.safetensors")
    b = load_file(tiny_build / "models" / "reference" / "model.safetensors")
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_parallel_build_gives_the_same_weights_as_one_process(tiny_build, tmp_path):
    """The default build trains both models at once (--jobs 2); one at a time in this process
    (--jobs 1), with the same --threads, gives bit-identical weights."""
    proc = subprocess.run(
        [sys.executable, "-m", "unlearn", "build-demo", "--tiny", "--out", str(tmp_path),
         "--seed", "3", "--max-steps", "3", "--seq-len", "64", "--batch-size", "4",
         "--jobs", "1", "--only", "reference"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parallel = json.loads((tiny_build / "models" / "manifest.json").read_text())
    serial = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert serial["models"]["reference"]["sha256"] == parallel["models"]["reference"]["sha256"]
    assert (parallel["models"]["reference"]["sha256"]
            != parallel["models"]["baseline"]["sha256"])


def test_bad_flags_are_rejected_with_a_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "unlearn", "build-demo", "--epochs", "0",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "epochs must be >= 1" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "unlearn", "build-demo", "--jobs", "0",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "jobs must be >= 1" in proc.stderr


def test_skip_world_without_world_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "unlearn", "build-demo", "--skip-world",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_reference_is_the_baseline_schedule_without_the_target():
    """World v3: the reference sees the neighbour saga as often as the baseline and exactly the
    same general blocks in the same epochs; it only leaves out the target (so fewer steps)."""
    from unlearn.demo.train import counterfactual_schedules

    def blocks(first: int, n: int) -> torch.Tensor:  # block i holds the id first + i
        return torch.arange(first, first + n)[:, None].repeat(1, 4)

    target, neighbour, general = blocks(0, 30), blocks(100, 10), blocks(1000, 180)
    core = {"baseline": torch.cat([target, neighbour]), "reference": neighbour}
    out = counterfactual_schedules(core, general, epochs=3, extra_passes=0.5, seed=0)
    ids = {name: out[name][:, 0].tolist() for name in out}
    assert len(ids["baseline"]) == 3 * 40 + 90
    assert len(ids["reference"]) == 3 * 10 + 90
    for name in out:
        assert all(ids[name].count(i) == 3 for i in range(100, 110)), name
    assert sum(i < 100 for i in ids["reference"]) == 0
    assert all(ids["baseline"].count(i) == 3 for i in range(30))
    # the same general blocks, epoch by epoch
    for epoch in range(3):
        general_of = {name: sorted(i for i in ids[name][epoch * (len(ids[name]) // 3):
                                                       (epoch + 1) * (len(ids[name]) // 3)]
                                   if i >= 1000) for name in out}
        assert general_of["baseline"] == general_of["reference"], epoch
        assert len(general_of["baseline"]) == 30
    again = counterfactual_schedules(core, general, epochs=3, extra_passes=0.5, seed=0)
    assert all(torch.equal(out[k], again[k]) for k in out)


def test_repeat_documents_whole_copies_then_a_seeded_share():
    from unlearn.demo.train import PretrainConfig, repeat_documents

    docs = [f"story {i}" for i in range(10)]
    assert repeat_documents(docs, 1.0, seed=0) == docs  # the default schedule is unchanged
    assert repeat_documents(docs, 2.0, seed=0) == docs + docs
    more = repeat_documents(docs, 1.5, seed=3)
    assert more[:10] == docs and len(more) == 15 and len(set(more[10:])) == 5
    assert more == repeat_documents(docs, 1.5, seed=3)
    assert more[10:] != repeat_documents(docs, 1.5, seed=4)[10:]
    with pytest.raises(ValueError, match="neighbour_repeats"):
        PretrainConfig(neighbour_repeats=0.5)


def test_manifest_records_weight_hashes(tiny_build):
    import hashlib

    manifest = json.loads((tiny_build / "models" / "manifest.json").read_text())
    for name in MODEL_CORPORA:
        data = (tiny_build / "models" / name / "model.safetensors").read_bytes()
        assert manifest["models"][name]["sha256"] == {
            "model.safetensors": hashlib.sha256(data).hexdigest()}
