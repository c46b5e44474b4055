"""Whether the Finetune tab may start a run here, and how: QLoRA for big models, memory first.

`finetune_refusal` is the one gate (the public-mode issue adds its operator check there);
`plan_finetune` picks LoRA/QLoRA; `stage_memory_gb` is the memory estimate it checks, a pure
function of sizes so that it is tested with hand-computed numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ui.gpu import on_zerogpu

QLORA_ABOVE = 1e9  # parameters: bigger models are finetuned with QLoRA by default
HEADROOM = 0.9  # use at most this share of the GPU memory that is still free
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ADAM_BYTES = 8  # two fp32 moments per trained parameter
LORA_SHARE = 0.01  # LoRA r=8 on every linear of a Llama: well under 1% of the parameters


@dataclass
class FinetunePlan:
    """What a run will train: all weights, LoRA, or LoRA on a 4-bit model (QLoRA)."""

    lora: bool
    quantization: str  # "none", "8bit" or "4bit" (only with LoRA)
    note: str = ""  # said in the status line when the plan overrides the user's choice


def plan_finetune(n_params: int, device: str, lora: bool, quantization: str) -> FinetunePlan:
    """QLoRA by default for models over 1B parameters on a GPU; else what the user chose."""
    if device.startswith("cuda") and n_params > QLORA_ABOVE:
        note = "" if lora and quantization == "4bit" else (
            f"QLoRA (LoRA on a 4-bit model) is used for this {n_params / 1e9:.1f}B-parameter "
            "model.")
        return FinetunePlan(True, "4bit", note)
    return FinetunePlan(lora, quantization if lora else "none")


def stage_memory_gb(n_params: int, dtype: str, plan: FinetunePlan, batch_size: int,
                    block_size: int, hidden: int, layers: int, vocab: int) -> dict[str, float]:
    """Peak GPU memory (GB) of each WHP stage, a deliberately simple estimate.

    reinforce: a full finetune of a copy of the model (weights + grads + Adam, activations);
    labels: the model and the reinforced model side by side for inference;
    finetune: the (4-bit) model, trained weights with grads + Adam, activations.
    Activations: ~18 values of `hidden` per token and layer, plus the logits, in the dtype
    (no gradient checkpointing).
    """
    w = BYTES.get(dtype, 4)
    tokens = batch_size * block_size
    activations = tokens * (18 * hidden * layers + 2 * vocab) * w
    trained_full = n_params * (w + w + ADAM_BYTES)
    base = n_params * (0.5 if plan.quantization == "4bit" else w)
    if plan.lora:  # fp32 adapters, their grads and Adam moments
        trained = n_params * LORA_SHARE * (4 + 4 + ADAM_BYTES)
    else:  # grads and Adam moments of every weight (the weights are `base`)
        trained = n_params * (w + ADAM_BYTES)
    gb = 1024 ** 3
    return {"reinforce": (trained_full + activations) / gb,
            "labels": (2 * n_params * w + tokens * 2 * vocab * 4) / gb,
            "finetune": (base + trained + activations) / gb}


def finetune_refusal(device: str, target_text: Path, estimate_gb: dict[str, float] | None,
                     free_gb: float | None) -> str | None:
    """Why a run must not start here (None = it may). The one gate of the Finetune tab.

    - On ZeroGPU a run on the GPU cannot work: the job runs in a background thread for minutes,
      outside any `@spaces.GPU` call (which may hold a GPU for a few minutes at most).
    - Without a target text there is nothing to unlearn (the Harry Potter suite ships none).
    - On a GPU, the estimated peak of every stage must fit in the free memory (with headroom).
    """
    if on_zerogpu() and device.startswith("cuda"):
        return ("Finetuning is disabled on ZeroGPU: a WHP run takes minutes in a background job, "
                "and ZeroGPU only lends a GPU to short calls. Run it on a GPU Space or locally "
                "(`python -m unlearn whp ...`).")
    if not Path(target_text).is_file():
        return (f"No target text at `{target_text}`: the run needs the text to unlearn. This "
                "suite ships none (book text cannot be redistributed); put your own copy there "
                "or start the app with `--demo-dir` pointing at a folder that has one.")
    if device.startswith("cuda") and estimate_gb is not None:
        peak_stage = max(estimate_gb, key=estimate_gb.get)
        peak = estimate_gb[peak_stage]
        if free_gb is None:
            return (f"GPU memory is unknown, so the run (estimated peak {peak:.1f} GB in the "
                    f"{peak_stage} stage) is not started; set WHP_GPU_MEMORY_GB.")
        if peak > HEADROOM * free_gb:
            return (f"Not enough GPU memory: the {peak_stage} stage needs about {peak:.1f} GB, "
                    f"{free_gb:.1f} GB are free beside the loaded models. Use a smaller model "
                    "or a bigger GPU, or run `python -m unlearn whp` on a machine without the "
                    "app's models loaded.")
    return None
