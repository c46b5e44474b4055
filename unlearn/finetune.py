"""Finetune on transformers' Trainer: WHP generic labels, or a baseline loss (GA, GradDiff, NPO).

Full finetune, LoRA or QLoRA (4-bit base). The same code runs in one process or under
`accelerate launch --num_processes N` (DDP). A run directory holds `checkpoints/checkpoint-N`
(resumable), `evals.jsonl` (optional audit scores over steps) and `final/` (the model, LoRA merged
into a full-precision base, written to a temporary folder and renamed, so `final/` is either
absent or complete).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from unlearn import losses
from unlearn.evaluate import EvalConfig, EvaluatorFactory, make_evaluator
from unlearn.options import (
    above,
    at_least,
    block_size_field,
    device_field,
    dtype_field,
    in_range,
    option,
    seed_field,
    validate,
)
from unlearn.run_dir import ADAPTER_DIR
from unlearn.runtime import ProgressFn, StopFn
from unlearn.training import (
    EvalCallback,
    ProgressCallback,
    build_trainer,
    checkpoint_step,
    collate,
    last_complete_checkpoint,
    load_checkpoint_weights,
    save_model_atomic,
    training_arguments,
)

METHODS = ("whp", "ga", "graddiff", "npo")
TRAIN_METHODS = (*METHODS, "lm")  # "lm": plain causal-LM loss (the reinforced model)
QUANTIZATIONS = ("none", "4bit", "8bit")
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneConfig:
    """How to finetune (the WHP step, or a comparison method on the same machinery)."""

    method: str = option("whp", "whp (generic labels), ga, graddiff, npo", choices=TRAIN_METHODS)
    steps: int = option(150, "optimizer steps (the paper: ~120-150 steps of 512-token blocks)",
                        check=at_least(1))
    lr: float = option(1e-5, "peak learning rate (linear decay to 0)", check=above(0))
    batch_size: int = option(8, "blocks per device per micro-batch", check=at_least(1))
    grad_accum: int = option(1, "micro-batches per step", check=at_least(1))
    block_size: int = block_size_field()  # comparison methods; WHP blocks come from the labels
    warmup_steps: int = option(0, "linear warm-up steps", check=at_least(0))
    weight_decay: float = option(0.0, "AdamW weight decay", check=at_least(0))
    max_grad_norm: float = option(1.0, "gradient clipping")
    lora: bool = option(False, "train LoRA adapters (merged at the end)")
    lora_adapter: bool = option(False, "with lora: also keep the unmerged adapter in "
                                "<run>/adapter (the app and audits load it on one shared base)")
    lora_r: int = option(16, "LoRA rank", check=at_least(1))
    lora_alpha: int = option(32, "LoRA scaling numerator", check=at_least(1))
    lora_dropout: float = option(0.0, "dropout on the LoRA branch", check=in_range(0, 1))
    lora_targets: tuple[str, ...] = option(LLAMA_LINEARS, "module names that get adapters",
                                           check=lambda v: None if v else "must not be empty")
    quantization: str = option("none", "quantized base (QLoRA; implies --lora)",
                               choices=QUANTIZATIONS)
    save_every: int = option(50, "checkpoint every N steps (0: only on cancel)",
                             check=at_least(0))
    save_total_limit: int = option(2, "keep at most this many checkpoints", check=at_least(1))
    seed: int = seed_field()  # data order and init of LoRA weights
    npo_beta: float = option(0.1, "NPO temperature beta", check=above(0))
    retain_weight: float = option(1.0, "gradient difference: weight of the retain NLL",
                                  check=above(0))
    device: str = device_field()
    dtype: str = dtype_field("float32", "weights dtype for loading the model to train")
    gradient_checkpointing: bool = option(False, "trade compute for memory")

    def __post_init__(self) -> None:
        self.lora_targets = tuple(self.lora_targets)
        validate(self)
        if self.quantization != "none" and not self.lora:
            raise ValueError("a quantized base can only be trained with LoRA (QLoRA): add lora")
        if self.lora_adapter and not self.lora:
            raise ValueError("lora_adapter keeps a LoRA adapter: add lora")


@dataclass
class FinetuneResult:
    """What a finetune produced."""

    status: str  # "completed" or "cancelled"
    final_dir: str | None  # the saved model (None when cancelled)
    step: int  # last optimizer step reached
    seconds: float
    resumed_from: str | None = None
    losses: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- data

@torch.inference_mode()
def add_reference_logprobs(model, dataset, batch_size: int = 8, pad_id: int = 0):
    """Add `ref_logp`: each block's sequence log-prob under `model` (the frozen NPO reference).

    Computed once before training with the initial weights, which is what a frozen copy of the
    initial model would give at every step, without keeping a second model in memory.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    values: list[float] = []
    for i in range(0, len(dataset), batch_size):
        rows = [dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]
        batch = collate(rows, pad_id)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        values += losses.sequence_logprob(logits, batch["labels"].to(device)).tolist()
    model.train(was_training)
    return dataset.add_column("ref_logp", values)


# ---------------------------------------------------------------- model

def load_trainable(path: str, config: FinetuneConfig):
    """`(model, tokenizer)` ready to train: full weights, or LoRA/QLoRA adapters on the base."""
    from unlearn.models import load_model
    from unlearn.runtime import sharded_launch

    # FSDP / ZeRO-3 shard the weights onto the GPUs themselves; a full copy on every GPU first
    # would need 28 GB per process for a 7B model in fp32
    device = "cpu" if sharded_launch() else config.device
    model, tok = load_model(str(path), device=device, dtype=config.dtype,
                            quantization=config.quantization)
    if config.lora:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if config.quantization != "none":
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=config.gradient_checkpointing)
        torch.manual_seed(config.seed)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                          lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_targets), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    model.config.use_cache = False
    return model, tok


def save_adapter(model, tokenizer, base_path: str, target: Path) -> None:
    """Save the peft adapter of `model` (and the tokenizer) to `target`, its config naming the
    base by absolute path when the base is a local folder."""
    base = Path(base_path).expanduser()
    for peft_config in model.peft_config.values():
        peft_config.base_model_name_or_path = str(base.resolve()) if base.exists() else base_path
    save_model_atomic(model, tokenizer, target)


def save_final(model, tokenizer, base_path: str, config: FinetuneConfig, target: Path,
               state_dict: dict | None = None) -> None:
    """Save a plain full-precision model: LoRA merged (into a reloaded base for QLoRA); with
    `lora_adapter` the unmerged adapter too, next to it.

    `state_dict`: the full weights gathered from a sharded run (FSDP, DeepSpeed ZeRO-3), saved
    in place of `model`'s own (a shard of them)."""
    if state_dict is not None:
        model.config.use_cache = True
        save_model_atomic(model, tokenizer, target, state_dict=state_dict)
        return
    if config.lora_adapter:
        save_adapter(model, tokenizer, base_path, target.parent / ADAPTER_DIR)
    if config.lora and config.quantization != "none":
        from peft import PeftModel

        from unlearn.models import load_model

        with tempfile.TemporaryDirectory(dir=target.parent) as adapter_dir:
            model.save_pretrained(adapter_dir)
            base, _ = load_model(base_path, device=config.device, dtype="float32")
            model = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    elif config.lora:
        model = model.merge_and_unload()
    model.config.use_cache = True
    save_model_atomic(model, tokenizer, target)


def finetune(baseline: str, dataset, run_dir: str | Path, config: FinetuneConfig,
             eval_config: EvalConfig | None = None, on_progress: ProgressFn | None = None,
             should_stop: StopFn | None = None,
             evaluator: EvaluatorFactory | None = None) -> FinetuneResult:
    """Train `baseline` on `dataset` with `config.method`; resume from `run_dir/checkpoints`.

    `dataset` rows: input_ids, attention_mask, labels (generic labels for WHP, the text itself
    for the baselines), plus retain_* columns for graddiff. Writes `run_dir/final/` unless
    cancelled by `should_stop()`, in which case a checkpoint is left to resume from.
    With an enabled `eval_config`, `evaluator(eval_config, tokenizer)` builds what scores the
    model at checkpoints into `run_dir/evals.jsonl` (the audits' `checkpoint_evaluator`).
    """
    start = time.time()
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if config.method == "graddiff" and "retain_input_ids" not in dataset.column_names:
        raise ValueError("graddiff needs retain text (retain_* columns)")
    model, tok = load_trainable(baseline, config)
    if config.method == "npo":
        dataset = add_reference_logprobs(model, dataset, config.batch_size,
                                         tok.pad_token_id or 0)
    progress = ProgressCallback("finetune", on_progress, should_stop)
    callbacks: list = [progress]
    measure = make_evaluator(eval_config, evaluator, tok)
    if measure is not None:
        callbacks.append(EvalCallback(measure, run_dir / "evals.jsonl", eval_config.every))
    args = training_arguments(
        ckpt_dir, lr=config.lr, batch_size=config.batch_size, grad_accum=config.grad_accum,
        seed=config.seed, device=config.device, max_steps=config.steps,
        save_every=config.save_every, save_total_limit=config.save_total_limit,
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        gradient_checkpointing=config.gradient_checkpointing)
    trainer = build_trainer(model, tok, dataset, args, config.method, callbacks,
                            config.npo_beta, config.retain_weight)
    if (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled) and config.lora:
        raise ValueError("LoRA under FSDP/DeepSpeed is not supported here (the final merge "
                         "needs the whole model on one process; LoRA on a 7B model fits one "
                         "GPU: use a plain `accelerate launch`, i.e. DDP)")
    resume = last_complete_checkpoint(ckpt_dir)
    if resume is not None and checkpoint_step(resume) >= config.steps:
        # finished training but not the final save: Trainer would run one extra step
        load_checkpoint_weights(trainer.model, resume)
        step = checkpoint_step(resume)
    else:
        trainer.train(resume_from_checkpoint=resume)
        step = trainer.state.global_step
    if progress.cancelled and step < config.steps:
        return FinetuneResult("cancelled", None, step, time.time() - start, resume,
                              progress.losses)
    final = run_dir / "final"
    state_dict = None
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        # sharded weights (FSDP, ZeRO-3): every process takes part in gathering the full ones
        state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if trainer.is_world_process_zero():
        save_final(trainer.accelerator.unwrap_model(trainer.model), tok, baseline, config, final,
                   state_dict)
    trainer.accelerator.wait_for_everyone()
    return FinetuneResult("completed", str(final), step, time.time() - start, resume,
                          progress.losses)
