"""Stream two (or more) models at once: one generate thread per model, all feeding one queue.

Generic (no gradio), so it is testable and benchmarkable on its own. The consumer yields the
texts of every pane as soon as any model produced tokens, so a slow model never holds a fast one
back; a `threading.Event` stops every generate call at its next step (Stop button, closed client).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    DynamicCache,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TextIteratorStreamer,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ui.limits import check_prompt_chars, check_prompt_tokens, context_length
from unlearn.runtime import Progress, ProgressFn, stream_threads

MODES = ("completion", "chat")
PREFILL_CHUNK = 256  # prompt tokens per forward before generation: Stop is checked in between


@dataclass
class GenerationSettings:
    """Sampling settings shared by both panes."""

    max_new_tokens: int = 48  # tokens generated per pane
    min_new_tokens: int = 0  # EOS is suppressed before this many tokens
    temperature: float = 0.8  # 0 = greedy
    top_p: float = 0.95  # nucleus sampling mass
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0  # 1 = off
    seed: int | None = 0  # each pane samples with its own generator seeded so; None = random
    mode: str = "completion"  # "completion" (continue the text) or "chat" (template applied)
    chat_template: str = "auto"  # auto (tokenizer's own, else plain) / llama2 / plain / none
    system_prompt: str = ""  # chat mode only

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def generate_kwargs(self, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Keyword arguments for `model.generate`.

        With a temperature above 0 the sampling itself is done by `SeededSampler` with
        `generator` (a fresh one seeded with `seed` when not given): transformers samples with
        torch's global RNG, which two generate threads would share, so the same seed would not
        give the same text. `generate` then only takes the sampler's (one-hot) choice.
        """
        kw: dict[str, Any] = {"max_new_tokens": int(self.max_new_tokens), "do_sample": False,
                              "temperature": None, "top_p": None, "top_k": None}
        if self.min_new_tokens:
            kw["min_new_tokens"] = min(int(self.min_new_tokens), int(self.max_new_tokens))
        if self.temperature > 0:
            gen = generator if generator is not None else seeded_generator(self.seed)
            kw["logits_processor"] = LogitsProcessorList([SeededSampler(
                gen, self.temperature, self.top_p, self.top_k)])
        if self.repetition_penalty != 1.0:
            kw["repetition_penalty"] = float(self.repetition_penalty)
        return kw


def seeded_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator of its own (never torch's global RNG); `None` = a random seed."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


class SeededSampler(LogitsProcessor):
    """Temperature / top-k / top-p sampling with a `torch.Generator` of its own.

    Runs as the last logits processor of a greedy `generate`: it draws the next token from the
    warped distribution with its generator and returns scores where only that token is finite,
    so greedy decoding picks it. Repetition penalty and min-new-tokens still apply before it.
    """

    def __init__(self, generator: torch.Generator, temperature: float, top_p: float = 1.0,
                 top_k: int = 0):
        if temperature <= 0:
            raise ValueError(f"SeededSampler needs a temperature > 0, got {temperature}")
        self.generator = generator
        self.warpers = [TemperatureLogitsWarper(float(temperature))]
        if top_k and top_k > 0:
            self.warpers.append(TopKLogitsWarper(int(top_k)))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(float(top_p)))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores, dim=-1)
        if probs.device.type != self.generator.device.type:
            probs = probs.to(self.generator.device)
        picked = torch.multinomial(probs, 1, generator=self.generator).to(scores.device)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, picked, 0.0)


def format_prompt(tokenizer, prompt: str, settings: GenerationSettings) -> tuple[str, bool]:
    """`(text, add_special_tokens)`: the prompt as the model should see it in this mode."""
    if settings.mode == "completion" or settings.chat_template == "none":
        return prompt, True
    template = settings.chat_template
    system = settings.system_prompt.strip()
    if template == "auto":
        if getattr(tokenizer, "chat_template", None):
            messages = ([{"role": "system", "content": system}] if system else [])
            messages.append({"role": "user", "content": prompt})
            text = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)
            return text, False  # the template writes BOS itself
        template = "plain"
    if template == "llama2":
        sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
        return f"[INST] {sys_block}{prompt.strip()} [/INST]", True
    head = f"{system}\n\n" if system else ""
    return f"{head}User: {prompt.strip()}\nAssistant:", True


def prompt_inputs(tokenizer, prompt: str, settings: GenerationSettings, device,
                  formatted: tuple[str, bool] | None = None) -> dict:
    """Model inputs for one formatted prompt (batch of one) on `device`; `formatted` = a
    `format_prompt` result made with another tokenizer (both panes get the first model's prompt
    format). Token ids of a plain prompt: `audits.scoring.encode_prompt`."""
    text, special = formatted or format_prompt(tokenizer, prompt, settings)
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=special)
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def check_prompt_fits(models: Sequence[tuple[Any, Any]], prompt: str,
                      settings: GenerationSettings) -> int:
    """Raise `LimitError` unless the formatted prompt plus the new tokens fits every model's
    context; returns the prompt's token count. Characters are checked before tokenizing, so a
    1 MB prompt is refused without being tokenized."""
    context = min(context_length(m) for m, _ in models)
    check_prompt_chars(prompt, context, settings.max_new_tokens)
    text, special = format_prompt(models[0][1], prompt, settings)
    n_tokens = len(models[0][1](text, add_special_tokens=special)["input_ids"])
    check_prompt_tokens(n_tokens, context, settings.max_new_tokens)
    return n_tokens


class PrefillCancelled(Exception):
    """The cancel flag was set while the prompt was being processed."""


def prefill(model, input_ids: torch.Tensor, cancel: threading.Event,
            chunk: int = PREFILL_CHUNK) -> DynamicCache | None:
    """The KV cache of all prompt tokens but the last, `chunk` tokens per forward, checking
    `cancel` between chunks (a long prompt's processing can be stopped); None when the prompt
    fits in one chunk (generate then processes it itself). input_ids: (1, T)."""
    n = input_ids.shape[1]
    if n - 1 <= chunk:
        return None
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        for start in range(0, n - 1, chunk):
            if cancel.is_set():
                raise PrefillCancelled
            model(input_ids=input_ids[:, start:min(start + chunk, n - 1)],
                  past_key_values=cache, use_cache=True)
    if cancel.is_set():
        raise PrefillCancelled
    return cache


class CancelCriteria(StoppingCriteria):
    """Stops generation at the next step once `cancel` is set."""

    def __init__(self, cancel: threading.Event):
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool,
                          device=input_ids.device)


@dataclass
class StreamStats:
    """Timings of one side-by-side stream, seconds from its start (filled while streaming)."""

    first_token_s: list[float | None] = field(default_factory=list)
    end_s: list[float | None] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)


class _PaneStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that pushes `(pane, text)` into a queue shared by all panes."""

    def __init__(self, tokenizer, pane: int, out: queue.Queue, stats: StreamStats, t0: float):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.pane, self.out, self.stats, self.t0 = pane, out, stats, t0

    def put(self, value: torch.Tensor) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            if self.stats.first_token_s[self.pane] is None:
                self.stats.first_token_s[self.pane] = time.perf_counter() - self.t0
            self.stats.tokens[self.pane] += int(value.numel())
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.out.put((self.pane, text))


_DONE = object()


def _run_generate(model, tokenizer, formatted, settings, cancel, pane, out, stats,
                  t0) -> None:
    # one torch thread per stream (unlearn.runtime; a per-thread setting): the two panes take
    # a core each instead of oversubscribing them
    torch.set_num_threads(stream_threads())
    try:
        inputs = prompt_inputs(tokenizer, "", settings, model.device, formatted)
        cache = prefill(model, inputs["input_ids"], cancel)
        extra = {} if cache is None else {"past_key_values": cache}
        streamer = _PaneStreamer(tokenizer, pane, out, stats, t0)
        model.generate(**inputs, **settings.generate_kwargs(), **extra, streamer=streamer,
                       stopping_criteria=StoppingCriteriaList([CancelCriteria(cancel)]),
                       pad_token_id=tokenizer.pad_token_id)
    except PrefillCancelled:
        pass  # stopped before the first token: the pane stays empty
    except Exception as exc:  # noqa: BLE001 - reported in the pane, the other pane goes on
        stats.errors[pane] = f"{type(exc).__name__}: {exc}"
        out.put((pane, exc))
    finally:
        stats.end_s[pane] = time.perf_counter() - t0
        out.put((pane, _DONE))


def stream_side_by_side(models: Sequence[tuple[Any, Any]], prompt: str,
                        settings: GenerationSettings | Sequence[GenerationSettings],
                        cancel: threading.Event, stats: StreamStats | None = None,
                        ) -> Iterator[tuple[str, ...]]:
    """Generate from every `(model, tokenizer)` at once; yield all pane texts on each new chunk.

    `settings` is shared, or one per model. Every pane gets the prompt in the format the first
    model's tokenizer gives it (with the `auto` chat template, an original with a chat template
    and an unlearned model without one still see the same text). Setting `cancel` stops every
    model at its next step; closing the iterator early (client gone) sets it too. A model that
    fails gets its error appended to its pane; the others carry on.
    """
    n = len(models)
    per_pane = list(settings) if isinstance(settings, (list, tuple)) else [settings] * n
    if len(per_pane) != n:
        raise ValueError(f"{n} models but {len(per_pane)} settings")
    stats = stats if stats is not None else StreamStats()
    stats.first_token_s[:] = [None] * n
    stats.end_s[:] = [None] * n
    stats.tokens[:] = [0] * n
    stats.errors[:] = [None] * n
    for s in per_pane:
        check_prompt_fits(models, prompt, s)
    # every pane samples with a generator of its own, seeded with its settings' seed (in
    # `generate_kwargs`): the two threads never share an RNG, so a seed repeats a text
    formatted = [format_prompt(models[0][1], prompt, s) for s in per_pane]
    out: queue.Queue = queue.Queue()
    texts = [""] * n
    t0 = time.perf_counter()
    threads = [threading.Thread(target=_run_generate, daemon=True, name=f"generate-pane-{i}",
                                args=(m, t, formatted[i], per_pane[i], cancel, i, out, stats,
                                      t0))
               for i, (m, t) in enumerate(models)]
    for th in threads:
        th.start()
    running = n
    completed = False
    try:
        while running:
            try:
                item = out.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:  # drain what arrived meanwhile: one update per burst, not per token
                pane, chunk = item
                if chunk is _DONE:
                    running -= 1
                elif isinstance(chunk, Exception):
                    texts[pane] += f"\n[generation failed: {type(chunk).__name__}: {chunk}]"
                else:
                    texts[pane] += chunk
                try:
                    item = out.get_nowait()
                except queue.Empty:
                    break
            yield tuple(texts)
        completed = True
    finally:
        if not completed:
            cancel.set()  # closed early (Stop, disconnect): no join, the threads stop by themselves
        else:
            for th in threads:
                th.join(timeout=1.0)


def sample_k(models: Sequence[tuple[Any, Any]], prompt: str, settings: GenerationSettings,
             k: int, cancel: threading.Event | None = None, on_progress: ProgressFn | None = None,
             ) -> tuple[list[int], list[list[str]]]:
    """`k` samples of every model with seeds `settings.seed` .. `+ k - 1` (all models at once
    per seed, as the side-by-side stream does: sample i is what one run with seed s+i gives).
    Returns `(seeds, texts per model)`; stops early when `cancel` is set."""
    import dataclasses
    import random

    if not 1 <= int(k) <= 100:
        raise ValueError(f"k must be between 1 and 100, got {k}")
    cancel = cancel or threading.Event()
    base = settings.seed if settings.seed is not None else random.randrange(2**31)
    seeds: list[int] = []
    texts: list[list[str]] = [[] for _ in models]
    for i in range(int(k)):
        if cancel.is_set():
            break
        last: tuple[str, ...] = ("",) * len(models)
        for now in stream_side_by_side(models, prompt,
                                       dataclasses.replace(settings, seed=base + i), cancel):
            last = now
        if cancel.is_set():
            break  # a stopped sample is cut short: not counted
        seeds.append(base + i)
        for pane, text in enumerate(last):
            texts[pane].append(text)
        if on_progress is not None:
            on_progress(Progress("sample", i + 1, int(k), message="sample"))
    return seeds, texts
