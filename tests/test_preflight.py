"""The CLIs fail fast and clean: every input is checked before the first stage (exit 2, one line
on stderr, no traceback, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unlearn.cli import main
from unlearn.preflight import PreflightError, check_device, check_writable_dir


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    from conftest import TINY_TEXT

    out = {"target": tmp_path / "target.txt", "anchors": tmp_path / "anchors.json"}
    out["target"].write_text("\n\n".join(TINY_TEXT[:15]))
    out["anchors"].write_text(json.dumps({"Mira": ["Anna"], "Pip": ["Tom"]}))
    return out


def _whp(model, files, out, **change) -> list[str]:
    args = {"--baseline": str(model), "--target": str(files["target"]),
            "--anchors": str(files["anchors"]), "--out": str(out), "--steps": "2",
            "--block-size": "64", "--batch-size": "4", "--reinforce-epochs": "1"}
    args.update(change)
    return ["whp", *[x for kv in args.items() for x in kv]]


def _fails_fast(argv, capsys, message: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("python -m unlearn")]) == 1, err
    assert "reinforce" not in err and "it/s" not in err  # no stage started (no progress bar)
    return err


@pytest.mark.parametrize("content, message", [
    (b"{not json", "--anchors"),
    (b"\xff\xfe\x00\x81 binary", "not UTF-8"),
    (b"[" * 50_000 + b"]" * 50_000, "--anchors"),
    (json.dumps({"Pip": ["Pip"]}).encode(), "--anchors"),  # translation equals the key
    (b"", "empty"),
])
def test_corrupt_anchors_fail_before_the_reinforce_stage(tiny_model_dir, files, tmp_path,
                                                          capsys, content, message):
    files["anchors"].write_bytes(content)
    out = tmp_path / "run"
    _fails_fast(_whp(tiny_model_dir, files, out), capsys, message)
    assert not out.exists()  # nothing written: the reinforce stage never started


def test_unwritable_out_fails_before_any_stage(tiny_model_dir, files, tmp_path, capsys):
    _fails_fast(_whp(tiny_model_dir, files, "/proc/whp-run"), capsys, "--out /proc/whp-run")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    _fails_fast(_whp(tiny_model_dir, files, a_file), capsys, "is not a folder")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only torch")
def test_cuda_on_a_cpu_only_torch_is_a_usage_error(tiny_model_dir, files, tmp_path, capsys):
    out = tmp_path / "run"
    _fails_fast(_whp(tiny_model_dir, files, out, **{"--device": "cuda"}), capsys,
                "no CUDA device")
    _fails_fast(_whp(tiny_model_dir, files, out, **{"--device": "tpu"}), capsys,
                "expected cpu, cuda")
    assert not out.exists()


def test_bad_eval_probes_fail_before_any_stage(tiny_model_dir, files, tmp_path, capsys):
    probes = tmp_path / "probes.jsonl"
    probes.write_text('{"prompt": "x"}\n')
    out = tmp_path / "run"
    _fails_fast(_whp(tiny_model_dir, files, out, **{"--eval-probes": str(probes)}), capsys,
                "needs 'prompt' and 'answer'")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only torch")
def test_audits_cli_checks_device_and_out_before_loading(tiny_model_dir, tmp_path, capsys):
    from audits.cli import main as audits_main

    base = ["run", "--model", f"original={tiny_model_dir}", "--suite", "demo"]
    for extra, message in (((f"--out={tmp_path / 'r'}", "--device", "cuda"), "no CUDA device"),
                           (("--out", "/proc/whp-report"), "/proc/whp-report")):
        with pytest.raises(SystemExit) as exit_:
            audits_main([*base, *extra])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_single_checks():
    check_device("cpu")
    check_writable_dir("/tmp/whp-not-yet/created/later")  # nearest parent /tmp is writable
    for bad in ("cuda:x", "gpu", "cpu:1"):
        with pytest.raises(PreflightError):
            check_device(bad)
