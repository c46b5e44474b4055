"""The demo's small Llama architecture, as a dataclass that becomes a `LlamaConfig`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TinyLlamaConfig:
    """Size of a demo `LlamaForCausalLM` (defaults: ~5M parameters, ~20 MB in float32)."""

    hidden_size: int = 256  # model width
    intermediate_size: int = 688  # SwiGLU width
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True  # keeps the file small

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be divisible by num_key_value_heads")


def build_model(cfg: TinyLlamaConfig, tokenizer, seed: int = 0):
    """A freshly initialised `LlamaForCausalLM` (float32) sized by `cfg` for `tokenizer`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        rms_norm_eps=1e-5, **asdict(cfg))
    model = LlamaForCausalLM(config)
    return model
