"""Finetune on transformers' Trainer: WHP generic labels, or a baseline loss (GA, GradDiff, NPO).

Full finetune, LoRA or QLoRA (4-bit base). The same code runs in one process or under
`accelerate launch --num_processes N` (DDP). A run directory holds `checkpoints/checkpoint-N`
(resumable), `evals.jsonl` (optional audit scores over steps) and `final/` (the model, LoRA merged
into a full-precision base, written to a temporary folder and renamed, so `final/` is either
absent or complete).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from unlearn import losses
from unlearn.evaluate import (
    CheckpointEvaluator,
    EvalConfig,
    EvaluatorFactory,
    append_eval,
    make_evaluator,
    read_evals,
)
from unlearn.runtime import (
    IGNORE_INDEX,
    Progress,
    ProgressFn,
    StopFn,
    is_main_process,
    publish_dir,
    temp_dir_next_to,
)

METHODS = ("whp", "ga", "graddiff", "npo")
TRAIN_METHODS = (*METHODS, "lm")  # "lm": plain causal-LM loss (the reinforced model)
QUANTIZATIONS = ("none", "4bit", "8bit")
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneConfig:
    """How to finetune (the WHP step, or a comparison method on the same machinery)."""

    method: str = "whp"  # "whp" (generic labels), "ga", "graddiff", "npo"
    steps: int = 150  # optimizer steps (the paper: ~120-150 steps of 512-token blocks)
    lr: float = 1e-5  # peak learning rate (linear decay to 0)
    batch_size: int = 8  # blocks per device per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    block_size: int = 512  # tokens per block (baselines; WHP blocks come from the labels)
    warmup_steps: int = 0  # linear warm-up steps
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping
    lora: bool = False  # train LoRA adapters instead of all weights (merged at the end)
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling numerator
    lora_dropout: float = 0.0  # dropout on the LoRA branch
    lora_targets: tuple[str, ...] = LLAMA_LINEARS  # module names that get adapters
    quantization: str = "none"  # "none", "4bit" (QLoRA), "8bit"; quantized needs lora=True
    save_every: int = 50  # checkpoint every N steps (0 = only on cancel)
    save_total_limit: int = 2  # keep at most this many checkpoints
    seed: int = 0  # data order and init of LoRA weights
    npo_beta: float = 0.1  # NPO temperature beta
    retain_weight: float = 1.0  # gradient difference: weight of the retain NLL
    device: str = "cpu"  # "cpu" or "cuda"; never guessed
    dtype: str = "float32"  # weights dtype for loading the model to train
    gradient_checkpointing: bool = False  # trade compute for memory

    def __post_init__(self) -> None:
        self.lora_targets = tuple(self.lora_targets)
        if self.method not in TRAIN_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, "
                             f"got {self.quantization!r}")
        if self.quantization != "none" and not self.lora:
            raise ValueError("a quantized base can only be trained with LoRA (QLoRA): add lora")
        for name in ("steps", "batch_size", "grad_accum", "block_size", "lora_r", "lora_alpha"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.block_size < 2:
            raise ValueError("block_size must be >= 2")
        for name in ("warmup_steps", "save_every", "weight_decay", "retain_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.save_total_limit < 1:
            raise ValueError("save_total_limit must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.npo_beta > 0:
            raise ValueError(f"npo_beta must be > 0, got {self.npo_beta}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError("lora_dropout must be in [0, 1)")
        if not self.lora_targets:
            raise ValueError("lora_targets is empty")


@dataclass
class FinetuneResult:
    """What a finetune produced."""

    status: str  # "completed" or "cancelled"
    final_dir: str | None  # the saved model (None when cancelled)
    step: int  # last optimizer step reached
    seconds: float
    resumed_from: str | None = None
    losses: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- Trainer and its callbacks

class UnlearnTrainer(Trainer):
    """The one Trainer subclass: `compute_loss` picks the method's loss from `unlearn.losses`."""

    # our losses are per-micro-batch means: let Trainer divide them by grad_accum
    loss_is_scaled_for_ga = False

    def __init__(self, *args, method: str = "whp", npo_beta: float = 0.1,
                 retain_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.method, self.npo_beta, self.retain_weight = method, npo_beta, retain_weight

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        if self.method == "graddiff":
            # one forward over forget + retain rows (DDP wants a single forward per backward)
            n = ids.size(0)
            out = model(input_ids=torch.cat([ids, inputs["retain_input_ids"]]),
                        attention_mask=torch.cat([mask, inputs["retain_attention_mask"]]))
            loss = losses.gradient_difference_loss(out.logits[:n], labels, out.logits[n:],
                                                   inputs["retain_labels"], self.retain_weight)
        else:
            out = model(input_ids=ids, attention_mask=mask)
            if self.method in ("whp", "lm"):
                loss = losses.whp_loss(out.logits, labels)
            elif self.method == "ga":
                loss = losses.gradient_ascent_loss(out.logits, labels)
            elif self.method == "npo":
                policy = losses.sequence_logprob(out.logits, labels)
                loss = losses.npo_loss(policy, inputs["ref_logp"].to(policy.dtype), self.npo_beta)
            else:
                raise ValueError(f"unknown method {self.method!r}")
        return (loss, out) if return_outputs else loss


class ProgressCallback(TrainerCallback):
    """Reports a `Progress` per logged step and stops when `should_stop()`."""

    def __init__(self, stage: str, on_progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None, save_on_stop: bool = True):
        self.stage, self.on_progress, self.should_stop = stage, on_progress, should_stop
        self.save_on_stop = save_on_stop
        self.cancelled = False
        self.losses: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop() and not control.should_training_stop:
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = self.save_on_stop  # leave a resumable checkpoint
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
            if self.on_progress is not None and state.is_world_process_zero:
                self.on_progress(Progress(self.stage, state.global_step, state.max_steps,
                                          float(logs["loss"])))
        return control


class EvalCallback(TrainerCallback):
    """Audit scores at step 0, every `every` steps and at the end, appended to `evals.jsonl`."""

    def __init__(self, evaluator: CheckpointEvaluator, path: Path, every: int):
        self.evaluator, self.path, self.every = evaluator, Path(path), every
        self.done = {r["step"] for r in read_evals(self.path)}

    def _run(self, state, model) -> None:
        if not state.is_world_process_zero or state.global_step in self.done or model is None:
            return
        append_eval(self.path, self.evaluator(model, state.global_step))
        self.done.add(state.global_step)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self._run(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and state.global_step % self.every == 0:
            self._run(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if state.global_step >= state.max_steps:
            self._run(state, model)


# ---------------------------------------------------------------- data

def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad every sequence field of a batch to one width (ids: pad_id, masks: 0, labels: -100)."""
    seq_fields = [k for k in ("input_ids", "attention_mask", "labels", "retain_input_ids",
                              "retain_attention_mask", "retain_labels") if k in features[0]]
    width = max(len(f[k]) for f in features for k in seq_fields)
    batch: dict[str, torch.Tensor] = {}
    for key in seq_fields:
        fill = IGNORE_INDEX if key.endswith("labels") else 0 if key.endswith("mask") else pad_id
        batch[key] = torch.tensor([list(f[key]) + [fill] * (width - len(f[key]))
                                   for f in features], dtype=torch.long)
    if "ref_logp" in features[0]:
        batch["ref_logp"] = torch.tensor([f["ref_logp"] for f in features], dtype=torch.float32)
    return batch


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

    model, tok = load_model(str(path), device=config.device, dtype=config.dtype,
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


def save_model_atomic(model, tokenizer, target: Path) -> None:
    """`save_pretrained` model + tokenizer into a temporary folder, then rename it to `target`."""
    tmp = temp_dir_next_to(target)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_final(model, tokenizer, base_path: str, config: FinetuneConfig, target: Path) -> None:
    """Save a plain full-precision model: LoRA merged (into a reloaded base for QLoRA)."""
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


# ---------------------------------------------------------------- checkpoints

def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """Newest `checkpoint-N` whose trainer_state.json (written last by Trainer) exists."""
    if not ckpt_dir.is_dir():
        return None
    found = []
    for child in ckpt_dir.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-"):
            try:
                step = int(child.name.split("-")[1])
            except ValueError:
                continue
            if (child / "trainer_state.json").is_file():
                found.append((step, child))
            elif is_main_process():
                shutil.rmtree(child, ignore_errors=True)  # half-written by an interrupted save
    return str(max(found)[1]) if found else None


def _checkpoint_step(path: str) -> int:
    return int(Path(path).name.split("-")[1])


def training_arguments(output_dir: Path, *, lr: float, batch_size: int, grad_accum: int,
                       seed: int, device: str, max_steps: int = -1, epochs: float = 1.0,
                       save_every: int = 0, save_total_limit: int = 2, warmup_steps: int = 0,
                       weight_decay: float = 0.0, max_grad_norm: float = 1.0,
                       gradient_checkpointing: bool = False) -> TrainingArguments:
    """The TrainingArguments every stage shares (no reporting, our own progress, no tqdm)."""
    return TrainingArguments(
        output_dir=str(output_dir), max_steps=max_steps, num_train_epochs=epochs,
        learning_rate=lr, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, warmup_steps=warmup_steps,
        weight_decay=weight_decay, max_grad_norm=max_grad_norm, seed=seed, data_seed=seed,
        save_strategy="steps" if save_every else "no", save_steps=save_every or 500,
        save_total_limit=save_total_limit, logging_strategy="steps", logging_steps=1,
        report_to="none", disable_tqdm=True, remove_unused_columns=False,
        use_cpu=device == "cpu", dataloader_num_workers=0,
        activation_checkpointing=gradient_checkpointing,
    )


def build_trainer(model, tokenizer, dataset, args: TrainingArguments, method: str,
                  callbacks: list, npo_beta: float = 0.1, retain_weight: float = 1.0):
    """An `UnlearnTrainer` with our collator and callbacks (the log printer removed)."""
    from transformers.trainer_callback import PrinterCallback

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainer = UnlearnTrainer(model=model, args=args, train_dataset=dataset,
                             data_collator=lambda rows: collate(rows, pad_id),
                             callbacks=callbacks, method=method, npo_beta=npo_beta,
                             retain_weight=retain_weight)
    trainer.remove_callback(PrinterCallback)
    return trainer


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
    resume = last_complete_checkpoint(ckpt_dir)
    if resume is not None and _checkpoint_step(resume) >= config.steps:
        # finished training but not the final save: Trainer would run one extra step
        trainer._load_from_checkpoint(resume)
        step = _checkpoint_step(resume)
    else:
        trainer.train(resume_from_checkpoint=resume)
        step = trainer.state.global_step
    if progress.cancelled and step < config.steps:
        return FinetuneResult("cancelled", None, step, time.time() - start, resume,
                              progress.losses)
    final = run_dir / "final"
    if trainer.is_world_process_zero():
        save_final(trainer.accelerator.unwrap_model(trainer.model), tok, baseline, config, final)
    trainer.accelerator.wait_for_everyone()
    return FinetuneResult("completed", str(final), step, time.time() - start, resume,
                          progress.losses)
