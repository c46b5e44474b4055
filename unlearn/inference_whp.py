"""WHP at inference time (the MUSE benchmark's variant): no finetune, Eq. 1 on every forward.

`WHPInferenceModel` wraps the baseline and the reinforced model. Its forward returns, at every
position, `v_b - alpha * relu(v_r - v_b)` (upcast to float32), so anything that scores next-token
logits (the audits) can use it in place of a model. `generate` decodes greedily or by sampling
with a KV cache for both models (two forwards per new token), with transformers' own
repetition-penalty / temperature / top-k / top-p processors; other `generate` options are refused
with a `ValueError` naming them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from unlearn.labels import DEFAULT_SPACE, generic_logits  # the one Eq. 1 implementation
from unlearn.runtime import stream_threads, torch_threads


def whp_logits(baseline_logits: torch.Tensor, reinforced_logits: torch.Tensor,
               alpha: float, space: str = DEFAULT_SPACE) -> torch.Tensor:
    """Eq. 1: v_b - alpha * relu(v_r - v_b), in float32; any shape (..., V).

    `space` as in `unlearn.labels.SPACES`: "logprob" (default, both rows log_softmax-ed first) or
    "logit" (the raw rows)."""
    return generic_logits(baseline_logits, reinforced_logits, alpha, space)


# `generate` keywords WHP at inference does not implement, with the value that means "off":
# passing one with that value is harmless, any other value is refused (never ignored)
NEUTRAL_GENERATION_KWARGS = {
    "num_beams": 1, "num_beam_groups": 1, "num_return_sequences": 1, "penalty_alpha": None,
    "min_new_tokens": None, "min_length": None, "max_length": None, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
    "min_p": None, "diversity_penalty": 0.0, "length_penalty": 1.0, "early_stopping": False,
    "logits_processor": None, "stopping_criteria": None, "prefix_allowed_tokens_fn": None,
    "force_words_ids": None, "constraints": None, "guidance_scale": None,
    "sequence_bias": None, "exponential_decay_length_penalty": None,
    "output_scores": False, "output_logits": False, "return_dict_in_generate": False,
    "assistant_model": None, "prompt_lookup_num_tokens": None, "generation_config": None,
    "past_key_values": None, "cache_implementation": None,
}


def check_generation_kwargs(kwargs: dict) -> None:
    """Raise `ValueError` naming the first `generate` option WHP at inference does not support
    (supported: max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty,
    eos/pad token ids, streamer, generator, use_cache)."""
    for name, value in kwargs.items():
        neutral = NEUTRAL_GENERATION_KWARGS.get(name, _UNKNOWN)
        if neutral is _UNKNOWN:
            raise ValueError(f"WHP at inference does not support the generate option "
                             f"{name!r}")
        empty = value is None or (isinstance(value, (list, tuple)) and not value)
        scalar = isinstance(value, (bool, int, float, str))
        if not (empty or (scalar and value == neutral)):
            raise ValueError(f"WHP at inference does not support {name}={value!r} "
                             f"(only {name}={neutral!r})")


_UNKNOWN = object()


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
    def _processors(do_sample: bool, temperature: float | None, top_p: float | None,
                    top_k: int | None, repetition_penalty: float | None,
                    mask: torch.Tensor):
        """`(LogitsProcessorList, sample)`: transformers' own processors, in `generate`'s order
        (repetition penalty, then the sampling warpers temperature, top-k, top-p); `mask` is the
        (B, T) prompt mask (as in `generate`, the penalty skips the left padding)."""
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        temperature = 1.0 if temperature is None else float(temperature)
        top_p = 1.0 if top_p is None else float(top_p)
        top_k = 0 if top_k is None else int(top_k)
        penalty = 1.0 if repetition_penalty is None else float(repetition_penalty)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")
        if not penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0 (1 = off), got {penalty}")
        procs = LogitsProcessorList()
        if penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(
                penalty, prompt_ignore_length=(mask != 0).int().argmax(dim=1)))
        sample = bool(do_sample) and temperature > 0  # temperature 0 decodes greedily
        if sample:
            if temperature != 1.0:
                procs.append(TemperatureLogitsWarper(temperature))
            if top_k > 0:
                procs.append(TopKLogitsWarper(top_k))
            if top_p < 1.0:
                procs.append(TopPLogitsWarper(top_p))
        return procs, sample

    @torch.inference_mode()  # the decorator also scopes each resumption of the generator
    def iter_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    max_new_tokens: int = 32, temperature: float | None = 1.0,
                    top_p: float | None = 1.0, do_sample: bool = False,
                    eos_token_id: int | list | None = None, use_cache: bool = True,
                    generator: torch.Generator | None = None, pad_token_id: int | None = None,
                    top_k: int | None = 0, repetition_penalty: float | None = 1.0,
                    ) -> Iterator[torch.Tensor]:
        """Yield the next tokens (B,) one step at a time; (B, T) left-padded prompt ids.

        `top_k` (0 = off) and `repetition_penalty` (1 = off) mean what they mean in
        `model.generate` (transformers' own logits processors, applied to the Eq. 1 logits).
        Rows that produced EOS get EOS afterwards; stops when every row has finished.
        `use_cache=False` recomputes the whole sequence each step (same tokens, slower).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        device = self.device
        ids = input_ids.to(device)
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(device)
        procs, sample = self._processors(do_sample, temperature, top_p, top_k,
                                         repetition_penalty, mask)
        if eos_token_id is None:
            eos_token_id = self.generation_config.eos_token_id
        eos = ([] if eos_token_id is None else
               [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
        eos_ids = torch.tensor(eos, dtype=torch.long, device=device)
        pad = pad_token_id if pad_token_id is not None else eos[0] if eos else 0
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
        out = self(ids, mask, positions, use_cache=use_cache, logits_to_keep=1)
        for i in range(max_new_tokens):
            scores = procs(ids, out.logits[:, -1]) if procs else out.logits[:, -1]  # (B, V)
            if sample:
                nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1,
                                        generator=generator).squeeze(-1)
            else:
                nxt = scores.argmax(-1)
            nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
            if eos:
                finished |= torch.isin(nxt, eos_ids)
            yield nxt
            if i == max_new_tokens - 1 or bool(finished.all()):
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
                 max_new_tokens: int = 32, temperature: float | None = 1.0,
                 top_p: float | None = 1.0, do_sample: bool = False, streamer=None,
                 eos_token_id: int | list | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None, pad_token_id: int | None = None,
                 top_k: int | None = 0, repetition_penalty: float | None = 1.0,
                 **kwargs) -> torch.Tensor:
        """Decode from Eq. 1; (B, T) ids -> (B, T + n) ids, like `model.generate`.

        `streamer` is any HF streamer (`put(ids)`, `end()`); it receives the prompt first.
        Finished rows are filled with `pad_token_id` (default EOS). Any other `generate`
        keyword raises `ValueError` naming it, unless it has its neutral value
        (`num_beams=1`, `num_return_sequences=1`, ...): nothing is silently ignored.
        """
        check_generation_kwargs(kwargs)
        ids = input_ids.to(self.device)
        if streamer is not None:
            streamer.put(ids.cpu())
        with torch_threads(stream_threads()):  # one generation stream (unlearn.runtime)
            for nxt in self.iter_tokens(ids, attention_mask, max_new_tokens, temperature, top_p,
                                        do_sample, eos_token_id, use_cache, generator,
                                        pad_token_id, top_k, repetition_penalty):
                ids = torch.cat([ids, nxt[:, None]], dim=-1)
                if streamer is not None:
                    streamer.put(nxt.cpu())
        if streamer is not None:
            streamer.end()
        return ids

    def stream_text(self, tokenizer, prompt: str, max_new_tokens: int = 64,
                    **kwargs) -> Iterator[str]:
        """Yield the growing completion of `prompt`, one new token at a time; keywords as in
        `generate` (unsupported ones raise `ValueError`)."""
        check_generation_kwargs({k: v for k, v in kwargs.items() if k not in _ITER_KWARGS})
        enc = tokenizer(prompt, return_tensors="pt")
        produced: list[int] = []
        for nxt in self.iter_tokens(enc["input_ids"], enc.get("attention_mask"),
                                    max_new_tokens,
                                    **{k: v for k, v in kwargs.items() if k in _ITER_KWARGS}):
            produced.append(int(nxt[0]))
            yield tokenizer.decode(produced, skip_special_tokens=True)


_ITER_KWARGS = ("temperature", "top_p", "do_sample", "eos_token_id", "use_cache", "generator",
                "pad_token_id", "top_k", "repetition_penalty")


def load_whp_inference(baseline: str, reinforced: str, alpha: float = 5.0, device: str = "cpu",
                       dtype: str = "auto", space: str = DEFAULT_SPACE):
    """`(WHPInferenceModel, tokenizer)` from two model folders (or hub ids)."""
    from unlearn.models import load_model

    base, tok = load_model(baseline, device=device, dtype=dtype)
    reinf, _ = load_model(reinforced, device=device, dtype=dtype)
    return WHPInferenceModel(base, reinf, alpha, space), tok
