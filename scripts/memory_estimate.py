"""GPU memory of the app's model pair, computed from model configs: weights + KV cache.

    python scripts/memory_estimate.py [--config config.json] [--context 4096] [--lora-r 16]
                                      [--markdown]

Default model: Llama-2-7B (its `config.json` numbers are embedded below, since the app's
machines need no hub access to run this). The pair is the original and the unlearned model,
each generating one sequence of `--context` tokens (the Side by side tab); "two models" loads
two full copies, "shared base" loads the base once plus a LoRA adapter of rank `--lora-r` on
every linear layer of every decoder layer (the finetune's `--lora --lora-adapter` output) and
still keeps one KV cache per side.

Byte counts per weight: bf16 2; bitsandbytes 8-bit (LLM.int8) 1 byte per linear-layer weight plus
one float32 scale per output row; 4-bit NF4 with double quantization 0.5 byte per weight plus
an 8-bit absmax per block of 64 and a float32 per 256 absmax. Embeddings, norms and `lm_head`
stay in bf16 when quantized (bitsandbytes quantizes `nn.Linear` only and skips `lm_head`). The
KV cache is in bf16; the LoRA adapter in float32 (peft keeps adapter weights in float32).
Activations and the CUDA context (~0.5 GB) are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from unlearn.memory import LLAMA2_7B, Counts, counts  # noqa: E402

GB = 1024 ** 3
BF16 = 2


def weight_bytes(c: Counts, precision: str) -> float:
    if precision == "bf16":
        return c.total * BF16
    if precision == "8bit":
        return c.linear * 1 + c.linear_rows * 4 + c.other * BF16
    if precision == "4bit":
        return c.linear * (0.5 + 1 / 64 + 4 / (64 * 256)) + c.other * BF16
    raise ValueError(f"unknown precision {precision!r}")


def table(cfg: dict, context: int, lora_r: int) -> list[dict]:
    c = counts(cfg, lora_r)
    kv = 2 * c.kv_per_token * context * BF16  # one sequence per side, two sides
    rows = []
    for precision in ("bf16", "8bit", "4bit"):
        w = weight_bytes(c, precision)
        two = 2 * w + kv
        shared = w + c.lora * 4 + kv
        rows.append({"precision": precision, "weights_gb": w / GB, "kv_gb": kv / GB,
                     "two_models_gb": two / GB, "shared_base_gb": shared / GB,
                     "saved": 1 - shared / two})
    return rows


def _size(gb: float) -> str:
    return f"{gb:.2f} GB" if gb >= 1 else f"{gb * 1024:.1f} MB"


def markdown(cfg: dict, name: str, context: int, lora_r: int) -> str:
    c = counts(cfg, lora_r)
    lines = [f"{name}: {c.total / 1e6:,.1f} M parameters; KV cache of both sides for "
             f"{context} tokens each (bf16); shared base = one base + a rank-{lora_r} LoRA "
             f"adapter ({c.lora / 1e6:,.1f} M parameters, float32).", "",
             "| precision | weights of one model | KV cache (2 sides) | two full models | "
             "shared base + adapter | saved |", "|---|---|---|---|---|---|"]
    for r in table(cfg, context, lora_r):
        lines.append(f"| {r['precision']} | {_size(r['weights_gb'])} | {_size(r['kv_gb'])} | "
                     f"{_size(r['two_models_gb'])} | {_size(r['shared_base_gb'])} | "
                     f"{r['saved']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="a model's config.json (default: Llama-2-7B)")
    parser.add_argument("--context", type=int, default=4096, help="tokens per side (default 4096)")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--markdown", action="store_true", help="a markdown table (else JSON)")
    args = parser.parse_args(argv)
    if args.context < 1 or args.lora_r < 1:
        parser.error("--context and --lora-r must be >= 1")
    cfg, name = LLAMA2_7B, "Llama-2-7B"
    if args.config is not None:
        try:
            cfg, name = json.loads(args.config.read_text(encoding="utf-8")), str(args.config)
        except (OSError, ValueError) as exc:
            parser.error(f"cannot read {args.config}: {exc}")
        missing = [k for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                               "num_attention_heads", "vocab_size") if k not in cfg]
        if missing:
            parser.error(f"{args.config} lacks {', '.join(missing)} (a Llama-layout config)")
    if args.markdown:
        print(markdown(cfg, name, args.context, args.lora_r), end="")
    else:
        print(json.dumps(table(cfg, args.context, args.lora_r), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
