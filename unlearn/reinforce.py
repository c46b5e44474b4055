"""The reinforced model (method section 1): the baseline trained further on the target text.

Plain causal-LM loss on target blocks for a few epochs, on the same Trainer machinery as the
finetune. Tokens tied to the target end up with higher logits than in the baseline, which is what
Eq. 1 uses to find them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from unlearn.data import lm_dataset
from unlearn.options import (
    above,
    at_least,
    block_size_field,
    device_field,
    dtype_field,
    option,
    seed_field,
    text_format_field,
    validate,
)
from unlearn.runtime import Cancelled, ProgressFn, StopFn
from unlearn.training import (
    ProgressCallback,
    build_trainer,
    save_model_atomic,
    training_arguments,
)


@dataclass
class ReinforceConfig:
    """How to train the reinforced model."""

    epochs: float = option(3.0, "passes over the target text", check=above(0))
    lr: float = option(5e-5, "peak learning rate (linear decay to 0)", check=above(0))
    block_size: int = block_size_field()
    batch_size: int = option(8, "blocks per device per micro-batch", check=at_least(1))
    grad_accum: int = option(1, "micro-batches per optimizer step", check=at_least(1))
    warmup_steps: int = option(0, "linear warm-up steps", check=at_least(0))
    seed: int = seed_field()
    device: str = device_field()
    dtype: str = dtype_field("float32", "weights dtype while training")
    text_format: str = text_format_field()

    def __post_init__(self) -> None:
        validate(self)


def reinforce(baseline: str, target_text: str, out_dir: str | Path, config: ReinforceConfig,
              on_progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict:
    """Train `baseline` on `target_text` and save the reinforced model to `out_dir`.

    Returns `{"steps", "final_loss", "seconds"}`. Raises `Cancelled` when `should_stop()` fires;
    `out_dir` is then left untouched (the model is published by a rename only when done).
    """
    from unlearn.models import load_model

    start = time.time()
    out_dir = Path(out_dir)
    model, tok = load_model(baseline, device=config.device, dtype=config.dtype)
    model.config.use_cache = False
    dataset = lm_dataset(tok, target_text, config.block_size, config.text_format)
    progress = ProgressCallback("reinforce", on_progress, should_stop, save_on_stop=False)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".reinforce-work-", dir=out_dir.parent))
    try:
        args = training_arguments(work, lr=config.lr, batch_size=config.batch_size,
                                  grad_accum=config.grad_accum, seed=config.seed,
                                  device=config.device, epochs=config.epochs,
                                  warmup_steps=config.warmup_steps)
        trainer = build_trainer(model, tok, dataset, args, "lm", [progress])
        trainer.train()
        if progress.cancelled:
            raise Cancelled("reinforce stopped before the end")
        if trainer.is_world_process_zero():
            trained = trainer.accelerator.unwrap_model(trainer.model)
            trained.config.use_cache = True
            save_model_atomic(trained, tok, out_dir)
        trainer.accelerator.wait_for_everyone()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"steps": trainer.state.global_step,
            "final_loss": progress.losses[-1] if progress.losses else None,
            "seconds": time.time() - start, "blocks": len(dataset)}
