"""Parameter counts of a Llama-layout decoder from its config alone (no torch, no weights):
the app's LoRA default and `scripts/memory_estimate.py` use them."""

from __future__ import annotations

from dataclasses import dataclass

# meta-llama/Llama-2-7b-hf config.json (also Llama-2-7b-chat-hf and
# microsoft/Llama2-7b-WhoIsHarryPotter, a full finetune of the chat model).
LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
             "max_position_embeddings": 4096, "tie_word_embeddings": False}


@dataclass
class Counts:
    """Parameter counts of a Llama-layout decoder."""

    linear: int  # q/k/v/o and gate/up/down of every layer (what bitsandbytes quantizes)
    linear_rows: int  # output features summed over those layers (one 8-bit scale per row)
    other: int  # embeddings, norms, lm_head (kept in bf16)
    lora: int  # a rank-r adapter on every linear layer
    kv_per_token: int  # values in the KV cache per token of one sequence

    @property
    def total(self) -> int:
        return self.linear + self.other


def counts(cfg: dict, lora_r: int) -> Counts:
    h, inter, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or h // heads
    kv = cfg.get("num_key_value_heads") or heads
    q, kvd = heads * head_dim, kv * head_dim
    shapes = [(h, q), (h, kvd), (h, kvd), (q, h), (h, inter), (h, inter), (inter, h)]  # (in, out)
    linear = n * sum(i * o for i, o in shapes)
    rows = n * sum(o for _, o in shapes)
    lora = n * sum(lora_r * (i + o) for i, o in shapes)
    embed = cfg["vocab_size"] * h
    other = embed * (1 if cfg.get("tie_word_embeddings") else 2) + n * 2 * h + h
    return Counts(linear, rows, other, lora, 2 * n * kvd)
