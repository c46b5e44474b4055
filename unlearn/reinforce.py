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
from unlearn.finetune import (
    ProgressCallback,
    build_trainer,
    save_model_atomic,
    training_arguments,
)
from unlearn.runtime import Cancelled, ProgressFn, StopFn


@dataclass
class ReinforceConfig:
    """How to train the reinforced model."""

    epochs: float = 3.0  # passes over the target text
    lr: float = 5e-5  # peak learning rate (linear decay to 0)
    block_size: int = 512  # tokens per training block
    batch_size: int = 8  # blocks per device per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup_steps: int = 0  # linear warm-up steps
    seed: int = 0  # data order
    device: str = "cpu"  # "cpu" or "cuda"; never guessed
    dtype: str = "float32"  # weights dtype while training
    text_format: str = "text"  # "text" or "paragraphs" (see unlearn.data.TEXT_FORMATS)

    def __post_init__(self) -> None:
        from unlearn.data import check_text_format

        check_text_format(self.text_format)
        if not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.block_size < 2:
            raise ValueError(f"block_size must be >= 2, got {self.block_size}")
        for name in ("batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")


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
