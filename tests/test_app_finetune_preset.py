"""The Finetune tab's fixed run settings come from ui/finetune_preset.json, not from code."""

from __future__ import annotations

from types import SimpleNamespace

from conftest import ASSETS

from ui.finetune_gate import FinetunePlan
from ui.tab_finetune import load_preset, whp_config


def test_whp_config_takes_the_preset(tmp_path):
    preset = load_preset()
    ctx = SimpleNamespace(demo_dir=ASSETS / "demo",
                          config=SimpleNamespace(dtype="auto", quantization="none", device="cpu"))
    cfg = whp_config(ctx, str(ASSETS / "models" / "baseline"), ASSETS / "demo" / "anchors.json",
                     tmp_path / "run", alpha=4.0, steps=20, lr=1e-4,
                     plan=FinetunePlan(lora=True, quantization="none"), max_tokens=3000,
                     block_size=128, reinforce_epochs=1.0)
    for section in ("reinforce", "finetune", "eval"):
        for key, value in preset[section].items():
            assert getattr(getattr(cfg, section), key) == value, (section, key)
    assert cfg.eval.every == 20 // preset["evaluations_per_run"]
    assert cfg.seed == preset["seed"] and cfg.labels.alphas == (4.0,)
    assert (cfg.finetune.steps, cfg.finetune.lr, cfg.finetune.lora) == (20, 1e-4, True)
    cfg.check_inputs()  # the demo files it points to exist
