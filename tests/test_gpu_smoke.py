"""scripts/gpu_smoke.py runs end to end on tiny stand-ins (CPU, 4-bit, the preset's template)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_script_on_tiny_stand_ins(capsys):
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "scripts" / "gpu_smoke.py")
    smoke = importlib.util.module_from_spec(spec)
    sys.modules["gpu_smoke"] = smoke
    spec.loader.exec_module(smoke)
    assert smoke.main(["--tiny", "--device", "cpu", "--quantization", "4bit",
                       "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "quantization 4bit, chat template llama2" in out
    assert "original: first token" in out and "unlearned: first token" in out
    assert "target_probability.jsonl (40 probes)" in out
    assert out.count("mean answer probability") == 2
    assert "no CUDA device" in out
