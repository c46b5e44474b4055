"""Training plumbing shared by every stage that trains (reinforce, finetune, comparison methods).

The one `Trainer` subclass (its loss picked from `unlearn.losses` by method), the callbacks
(progress + cancel, checkpoint evaluation), the collator, `TrainingArguments` built the same way
for every stage, and checkpoint / model-saving helpers. `reinforce.py` and `finetune.py` are each
a config and a function on top of this, like trl's config/trainer pairs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from unlearn import losses
from unlearn.evaluate import CheckpointEvaluator, append_eval, read_evals
from unlearn.runtime import (
    IGNORE_INDEX,
    Progress,
    ProgressFn,
    StopFn,
    is_main_process,
    publish_dir,
    temp_dir_next_to,
    write_json,
)

__all__ = ["UnlearnTrainer", "ProgressCallback", "EvalCallback", "collate", "training_arguments",
           "build_trainer", "last_complete_checkpoint", "checkpoint_step",
           "load_checkpoint_weights", "save_model_atomic"]


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


# ---------------------------------------------------------------- arguments, checkpoints, saving

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


def checkpoint_step(path: str) -> int:
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


def save_model_atomic(model, tokenizer, target: Path, extra_json: dict | None = None,
                      state_dict: dict | None = None) -> None:
    """`save_pretrained` model + tokenizer (and `extra_json`: file name -> JSON data) into a
    temporary folder, then rename it to `target`. `state_dict`: weights to save instead of the
    model's own (the full weights gathered from a sharded run)."""
    tmp = temp_dir_next_to(target)
    try:
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        for name, data in (extra_json or {}).items():
            write_json(Path(tmp) / name, data)
        publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_checkpoint_weights(model, checkpoint: str | Path) -> None:
    """Load a Trainer checkpoint's weights into `model`: a peft adapter
    (`adapter_model.safetensors`) or the full weights (`model.safetensors`, tied ones re-tied)."""
    from safetensors.torch import load_file

    ckpt = Path(checkpoint)
    adapter, full = ckpt / "adapter_model.safetensors", ckpt / "model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(adapter))
        if result.unexpected_keys:
            raise ValueError(f"{adapter} does not fit the model: {result.unexpected_keys[:3]}")
        return
    if not full.is_file():
        raise FileNotFoundError(f"no model weights in checkpoint {ckpt}")
    state = load_file(full)
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.tie_weights()
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {params[k].data_ptr() for k in state if k in params}
    untied = [k for k in missing if k not in params or params[k].data_ptr() not in loaded]
    if unexpected or untied:
        raise ValueError(f"{full} does not fit the model (unexpected {unexpected[:3]}, "
                         f"missing {untied[:3]})")
