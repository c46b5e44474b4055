"""WHP at inference time (the MUSE benchmark's variant): no finetune, Eq. 1 on every forward.

`WHPInferenceModel` wraps the baseline and the reinforced model. Its forward returns, at every
position, `v_b - alpha * relu(v_r - v_b)` (upcast to float32), so anything that scores next-token
logits (the audits) can use it in place of a model. `generate` decodes greedily or by sampling
with a KV cache for both models (two forwards per new token).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from unlearn.labels import DEFAULT_SPACE, generic_logits  # the one Eq. 1 implementation


def whp_logits(baseline_logits: torch.Tensor, reinforced_logits: torch.Tensor,
               alpha: float, space: str = DEFAULT_SPACE) -> torch.Tensor:
    """Eq. 1: v_b - alpha * relu(v_r - v_b), in float32; any shape (..., V).

    `space` as in `unlearn.labels.SPACES`: "logprob" (default, both rows log_softmax-ed first) or
    "logit" (the raw rows)."""
    return generic_logits(baseline_logits, reinforced_logits, alpha, space)


@dataclass
class WHPOutput:
    """What the wrapper's forward returns (the fields audits read from a causal-LM output)."""

    logits: torch.Tensor  # (B, T, V) float32
    past_key_values: tuple | None = None  # (baseline cache, reinforced cache)

    def __getitem__(self, key):
        return getattr(self, key)


class WHPInferenceModel(torch.nn.Module):
    """Baseline + reinforced model combined by Eq. 1 at every position."""

    def __init__(self, baseline, reinforced, alpha: float = 5.0, space: str = DEFAULT_SPACE):
        super().__init__()
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        from unlearn.labels import SPACES

        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        self.space = space
        vb = baseline.get_output_embeddings().weight.shape[0]
        vr = reinforced.get_output_embeddings().weight.shape[0]
        if vb != vr:
            raise ValueError(f"baseline and reinforced vocabularies differ ({vb} vs {vr})")
        self.baseline, self.reinforced, self.alpha = baseline, reinforced, float(alpha)
        self.eval()

    @property
    def config(self):
        return self.baseline.config

    @property
    def generation_config(self):
        return self.baseline.generation_config

    @property
    def device(self) -> torch.device:
        return next(self.baseline.parameters()).device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: tuple | None = None,
                use_cache: bool = False, logits_to_keep: int = 0, **kwargs) -> WHPOutput:
        """Eq. 1 on both models' logits: (B, T) ids -> `WHPOutput` with (B, T, V) logits.

        `past_key_values` is the pair of caches a previous call returned with `use_cache=True`.
        """
        cache_b, cache_r = past_key_values if past_key_values is not None else (None, None)
        common = dict(input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=position_ids, use_cache=use_cache)
        if logits_to_keep:
            common["logits_to_keep"] = logits_to_keep
        out_b = self.baseline(past_key_values=cache_b, **common)
        out_r = self.reinforced(past_key_values=cache_r, **common)
        caches = (out_b.past_key_values, out_r.past_key_values) if use_cache else None
        return WHPOutput(whp_logits(out_b.logits, out_r.logits, self.alpha, self.space), caches)

    @staticmethod
    def _pick(logits: torch.Tensor, do_sample: bool, temperature: float, top_p: float,
              generator: torch.Generator | None) -> torch.Tensor:
        """(B, V) float32 logits -> (B,) next tokens (argmax, or nucleus sampling)."""
        if not do_sample or temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_p, idx = probs.sort(-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the top token
            sorted_p = sorted_p * keep
            probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    @torch.inference_mode()  # the decorator also scopes each resumption of the generator
    def iter_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    max_new_tokens: int = 32, temperature: float = 1.0, top_p: float = 1.0,
                    do_sample: bool = False, eos_token_id: int | list | None = None,
                    use_cache: bool = True, generator: torch.Generator | None = None,
                    pad_token_id: int | None = None) -> Iterator[torch.Tensor]:
        """Yield the next tokens (B,) one step at a time; (B, T) left-padded prompt ids.

        Rows that produced EOS get EOS afterwards; stops when every row has finished.
        `use_cache=False` recomputes the whole sequence each step (same tokens, slower).
        """
        device = self.device
        ids = input_ids.to(device)
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(device)
        if eos_token_id is None:
            eos_token_id = self.generation_config.eos_token_id
        eos = ([] if eos_token_id is None else
               [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
        pad = pad_token_id if pad_token_id is not None else eos[0] if eos else 0
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
        out = self(ids, mask, positions, use_cache=use_cache, logits_to_keep=1)
        for i in range(max_new_tokens):
            nxt = self._pick(out.logits[:, -1], do_sample, temperature, top_p, generator)
            nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
            if eos:
                finished |= torch.isin(nxt, torch.tensor(eos, device=device))
            yield nxt
            if bool(finished.all()) or i == max_new_tokens - 1:
                return
            ids = torch.cat([ids, nxt[:, None]], dim=-1)
            mask = torch.cat([mask, torch.ones_like(nxt[:, None])], dim=-1)
            if use_cache:
                positions = positions[:, -1:] + 1
                out = self(nxt[:, None], mask, positions,
                           past_key_values=out.past_key_values, use_cache=True,
                           logits_to_keep=1)
            else:
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                out = self(ids, mask, positions, logits_to_keep=1)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 max_new_tokens: int = 32, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = False, streamer=None, eos_token_id: int | list | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None,
                 pad_token_id: int | None = None, **kwargs) -> torch.Tensor:
        """Decode from Eq. 1; (B, T) ids -> (B, T + n) ids, like `model.generate`.

        `streamer` is any HF streamer (`put(ids)`, `end()`); it receives the prompt first.
        Finished rows are filled with `pad_token_id` (default EOS). Other HF generation
        keywords (e.g. `top_k=0`) are accepted and ignored.
        """
        ids = input_ids.to(self.device)
        if streamer is not None:
            streamer.put(ids.cpu())
        for nxt in self.iter_tokens(ids, attention_mask, max_new_tokens, temperature, top_p,
                                    do_sample, eos_token_id, use_cache, generator,
                                    pad_token_id):
            ids = torch.cat([ids, nxt[:, None]], dim=-1)
            if streamer is not None:
                streamer.put(nxt.cpu())
        if streamer is not None:
            streamer.end()
        return ids

    def stream_text(self, tokenizer, prompt: str, max_new_tokens: int = 64,
                    **kwargs) -> Iterator[str]:
        """Yield the growing completion of `prompt`, one new token at a time."""
        enc = tokenizer(prompt, return_tensors="pt")
        produced: list[int] = []
        for nxt in self.iter_tokens(enc["input_ids"], enc.get("attention_mask"),
                                    max_new_tokens, **kwargs):
            produced.append(int(nxt[0]))
            yield tokenizer.decode(produced, skip_special_tokens=True)


def load_whp_inference(baseline: str, reinforced: str, alpha: float = 5.0, device: str = "cpu",
                       dtype: str = "auto", space: str = DEFAULT_SPACE):
    """`(WHPInferenceModel, tokenizer)` from two model folders (or hub ids)."""
    from unlearn.models import load_model

    base, tok = load_model(baseline, device=device, dtype=dtype)
    reinf, _ = load_model(reinforced, device=device, dtype=dtype)
    return WHPInferenceModel(base, reinf, alpha, space), tok
