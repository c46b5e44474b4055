"""Recipe for a tiny model that learns the demo tasks *in context* (associative-recall sheets).

Training text is "exercise sheets": lines in a demo task's format (`input` + prompt + answer) whose
key -> label map is drawn afresh for every sheet (keys and labels of that task family). A label can
then only be predicted by finding an earlier line with the same key (multi-query associative
recall, Arora et al. 2023), so the loss is put on the labels of repeated keys only. Zero-shot
accuracy on the real tasks stays at chance by construction; k-shot accuracy measures in-context
learning. A curriculum makes the induction circuit form early: sheets start with 4 keys and bare
"key is label" lines, and grow to 8 keys with every line in the full task form over `ramp_steps`
steps, counted only while the model copies well (running copy accuracy >= `advance_at`), so the
harder sheets come once the circuit has formed rather than at a fixed step.

What makes it learn within minutes is a guide on the attention (`guide_heads`): an auxiliary loss
that pulls two heads of the first layer to look 1 and 2 tokens back and one head of the second
layer to look, from where a repeated key's label is predicted, at the label of the key's previous
line; the recall links are known when a sheet is written. Only training uses it: the saved model
is a plain `LlamaForCausalLM` that finds the matching line by itself (standard attention). Without
the guide no recipe here left the plateau before induction (copy accuracy 0.34-0.58 after
500-2,500 steps, 8-shot accuracy at chance; README, "In-context exact unlearning").

`python -m unlearn build-demo --only icl` (or `python -m unlearn.demo.icl --out DIR`) writes the
model, its manifest (recipe, time) and the learning curve (`curve.jsonl`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from unlearn.demo.modeling import TinyLlamaConfig, build_model
from unlearn.demo.tasks import SPECS, TaskSpec
from unlearn.erase.evaluate import right_pad
from unlearn.runtime import Cancelled, Progress, write_json


@dataclass
class ICLRecipe:
    """How the in-context demo model is trained (every field is recorded in its manifest)."""

    hidden_size: int = 128  # model width
    intermediate_size: int = 256  # small MLP: the skill is attention (induction)
    layers: int = 2  # induction needs >= 2 (previous-token head, then copying head)
    heads: int = 4
    lines_min: int = 8  # demonstrations per training sheet, drawn uniformly in [min, max]
    lines_max: int = 16
    keys_start: int = 4  # distinct keys per sheet at the start of the curriculum ...
    keys_end: int = 8  # ... growing to this many at its end
    ramp_steps: int = 1000  # curriculum length in steps: keys grow and filler words fade in ...
    advance_at: float = 0.85  # ... only while the running copy accuracy is at least this
    bare_pairs: bool = False  # the curriculum starts from "key label" pairs without the task's
    # word between (the multi-query associative recall form: the label is right after its key);
    # the task word fades in over the first half of the curriculum, the fillers over the second
    guide_heads: float = 1.0  # weight of an auxiliary loss on the attention of three heads:
    # heads 0 and 1 of the first layer attend 1 and 2 tokens back, head 0 of the second layer
    # attends from where a repeated key's label is predicted to the label of its previous line
    # (the induction circuit: without this guide it had not formed after 2,500 steps in any
    # recipe tried, and a plain MQAR sanity run was still at chance after 900; with it, copy
    # accuracy passes 0.99 by step 500); 0 = off
    wide_labels: float = 0.5  # share of sheets whose labels come from a wide word pool
    pool_size: int = 400  # words in that pool (one-token words of the tokenizer)
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 50
    max_steps: int = 2500
    cpu_minutes: float = 28.0  # CPU-time cap of the training process (time.process_time): a
    # busy machine stretches the wall time but does not change the run; stops at whichever of
    # max_steps and cpu_minutes comes first
    wall_minutes: float | None = None  # optional wall-clock cap too (a session deadline)
    eval_every: int = 250
    eval_queries: int = 96  # test queries per task in the learning-curve probe
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("hidden_size", "intermediate_size", "layers", "heads", "lines_min",
                     "keys_start", "batch_size", "max_steps", "eval_every", "eval_queries",
                     "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lines_max < self.lines_min:
            raise ValueError("lines_max must be >= lines_min")
        if not 0 <= self.wide_labels <= 1:
            raise ValueError("wide_labels must be in [0, 1]")
        if not 0 < self.advance_at <= 1:
            raise ValueError("advance_at must be in (0, 1]")
        if not 1 <= self.keys_start <= self.keys_end:
            raise ValueError("need 1 <= keys_start <= keys_end")
        if self.guide_heads < 0:
            raise ValueError(f"guide_heads must be >= 0, got {self.guide_heads}")
        if self.guide_heads > 0 and (self.layers < 2 or self.heads < 2):
            raise ValueError("the attention guide needs >= 2 layers and >= 2 heads "
                             "(or --guide-heads 0)")
        if self.lr <= 0 or self.cpu_minutes <= 0:
            raise ValueError("lr and cpu_minutes must be positive")

    def model_config(self) -> TinyLlamaConfig:
        return TinyLlamaConfig(hidden_size=self.hidden_size,
                               intermediate_size=self.intermediate_size,
                               num_hidden_layers=self.layers, num_attention_heads=self.heads,
                               num_key_value_heads=self.heads, max_position_embeddings=512)


def _fill(spec: TaskSpec, key: str, rng: random.Random) -> str:
    return spec.template.format(key=key, **{s: rng.choice(v) for s, v in spec.slots.items()})


def word_pool(tokenizer, size: int) -> list[str]:
    """The first `size` (by token id) lower-case words of 3+ letters that are one token after a
    space: labels for the wide sheets, where guessing a label seen on the sheet rarely pays."""
    words = []
    for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        word = tokenizer.convert_tokens_to_string([token])
        if word.startswith(" ") and word[1:].isalpha() and word[1:].islower() and len(word) > 3:
            words.append(word[1:])
    return words[:size]


def sheet(rng: random.Random, recipe: ICLRecipe, progress: float,
          pool: list[str] = ()) -> list[tuple[str, str, bool, str]]:
    """(text before the label, label text, key seen before on this sheet, key) per line.

    `progress` in [0, 1] is the curriculum position: the most keys a sheet may hold and the
    probability that a line carries the task's filler words both grow with it. With probability
    `recipe.wide_labels` the labels come from `pool` instead of the task's own labels (MQAR-style
    values: with many possible labels only the matching key tells which one follows)."""
    spec = rng.choice(SPECS)
    most = round(recipe.keys_start + progress * (recipe.keys_end - recipe.keys_start))
    keys = rng.sample(list(spec.keys), min(len(spec.keys), rng.randint(recipe.keys_start, most)))
    labels = pool if pool and rng.random() < recipe.wide_labels else spec.labels
    mapping = {k: rng.choice(labels) for k in keys}
    if recipe.bare_pairs:
        worded, filler = min(1.0, 2 * progress), max(0.0, 2 * progress - 1)
    else:
        worded, filler = 1.0, progress
    seen: set[str] = set()
    pieces = []
    for n in range(rng.randint(recipe.lines_min, recipe.lines_max)):
        key = rng.choice(keys)
        # a bare key keeps its leading space, so it is the same token as in a full input
        text = _fill(spec, key, rng) if rng.random() < filler else " " + key
        if rng.random() < worded:
            text = spec.prompt.format(input=text)
        pieces.append((("\n" if n else "") + text,
                       spec.answer.format(output=mapping[key]), key in seen, key))
        seen.add(key)
    return pieces


def encode_sheet(tokenizer, pieces: list[tuple[str, str, bool, str]]
                 ) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Token ids with BOS; labels: -100 except the answer tokens of repeated keys (a first
    occurrence cannot be predicted, so it would only add noise); and the recall links: for each
    repeated key, (position that predicts its label, position of the label of the key's previous
    line), the attention an induction head makes."""
    ids = [tokenizer.bos_token_id]
    labels = [-100]
    links: list[tuple[int, int]] = []
    last_label: dict[str, int] = {}
    for text, answer, repeated, key in pieces:
        t = tokenizer.encode(text, add_special_tokens=False)
        a = tokenizer.encode(answer, add_special_tokens=False)
        if repeated:
            links.append((len(ids) + len(t) - 1, last_label[key]))
        last_label[key] = len(ids) + len(t)
        ids += t + a
        labels += [-100] * len(t) + (a if repeated else [-100] * len(a))
    return ids, labels, links


def _batch(tokenizer, rng: random.Random, recipe: ICLRecipe, progress: float, pool: list[str]):
    rows = [encode_sheet(tokenizer, sheet(rng, recipe, progress, pool))
            for _ in range(recipe.batch_size)]
    ids, mask, labels = right_pad([r[0] for r in rows], tokenizer.pad_token_id,
                                  [r[1] for r in rows])
    links = torch.tensor([(b, q, src) for b, r in enumerate(rows) for q, src in r[2]],
                         dtype=torch.long).reshape(-1, 3)
    return ids, labels, mask, links


def guide_loss(attentions, mask, links: torch.Tensor | None = None) -> torch.Tensor:
    """Mean -log attention weight of head h of the first layer on the token h + 1 back
    (h = 0, 1), over the real (unpadded) positions that have such a token; with `links`
    ((N, 3): row, query position, source position), also of head 0 of the second layer from
    each query on its source (the recall an induction head makes)."""
    first = attentions[0]  # (B, heads, T, T)
    terms = []
    for head, back in ((0, 1), (1, 2)):
        diag = torch.diagonal(first[:, head], offset=-back, dim1=-2, dim2=-1)  # (B, T - back)
        valid = mask[:, back:].bool()
        terms.append(-torch.log(diag[valid] + 1e-6).mean())
    if links is not None and len(links) and len(attentions) > 1:
        recall = attentions[1][links[:, 0], 0, links[:, 1], links[:, 2]]
        terms.append(-torch.log(recall + 1e-6).mean())
    return sum(terms) / len(terms)


def label_loss(model, ids, mask, labels, guide: float = 0.0,
               links: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """Next-token loss on the kept label tokens (only those positions are projected onto the
    vocabulary), and the fraction of them the model's argmax gets right (copy accuracy); plus
    `guide` x `guide_loss` when `guide` > 0 (the model must run eager attention)."""
    out = model.model(input_ids=ids, attention_mask=mask, output_attentions=guide > 0)
    hidden = out.last_hidden_state  # (B, T, H)
    targets = labels[:, 1:]
    keep = targets != -100  # (B, T-1)
    logits = model.lm_head(hidden[:, :-1][keep]).float()  # (N, V)
    gold = targets[keep]
    copy = (logits.argmax(-1) == gold).float().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, gold)
    if guide > 0:
        loss = loss + guide * guide_loss(out.attentions, mask, links)
    return loss, copy


def probe(model, tokenizer, tasks, queries: int, rng: random.Random) -> dict[str, float]:
    """Mean accuracy over the demo tasks on their first `queries` test queries: zero-shot and
    8-shot with 8 random training examples."""
    from unlearn.erase.evaluate import accuracy

    out = {"acc0": 0.0, "acc8": 0.0}
    for task in tasks:
        q = task.test[:queries]
        out["acc0"] += accuracy(model, tokenizer, task, [], q) / len(tasks)
        out["acc8"] += accuracy(model, tokenizer, task, rng.sample(task.train, 8), q) / len(tasks)
    return {k: round(v, 4) for k, v in out.items()}


def train(out: Path, tasks_dir: Path, tokenizer_path: str | Path, recipe: ICLRecipe,
          on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> dict:
    """Train, write the model (atomically), `curve.jsonl` and `manifest.json` into `out`; returns
    the manifest. `should_stop` returning True raises `Cancelled` (nothing is written)."""
    from transformers import AutoTokenizer

    from unlearn.erase.task import load_task
    from unlearn.training import save_model_atomic

    torch.set_num_threads(recipe.threads)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    tasks = [load_task(Path(tasks_dir) / s.name) for s in SPECS]
    model = build_model(recipe.model_config(), tokenizer, seed=recipe.seed)
    if recipe.guide_heads > 0:
        model.set_attn_implementation("eager")  # the guide reads the attention weights
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    rng, eval_rng = random.Random(recipe.seed), random.Random(recipe.seed + 1)
    pool = word_pool(tokenizer, recipe.pool_size)
    curve: list[dict] = []
    start, cpu_start = time.time(), time.process_time()
    tokens, step, copy_sum, loss_sum = 0, 0, 0.0, 0.0
    progress, copy_ema = 0.0, 0.0  # curriculum position in [0, 1]; running copy accuracy
    model.train()
    wall_cap = float("inf") if recipe.wall_minutes is None else recipe.wall_minutes * 60
    while (step < recipe.max_steps and time.time() - start < wall_cap
           and time.process_time() - cpu_start < recipe.cpu_minutes * 60):
        if should_stop and should_stop():
            raise Cancelled("icl training cancelled")
        # linear warmup, then cosine decay to 10% over max_steps
        frac = min(1.0, step / recipe.max_steps)
        scale = min(1.0, (step + 1) / recipe.warmup_steps) * (
            0.1 + 0.45 * (1 + torch.cos(torch.tensor(frac * torch.pi)).item()))
        for group in opt.param_groups:
            group["lr"] = recipe.lr * scale
        ids, labels, mask, links = _batch(tokenizer, rng, recipe, progress, pool)
        loss, copy = label_loss(model, ids, mask, labels, recipe.guide_heads, links)
        copy_ema = 0.95 * copy_ema + 0.05 * copy
        if copy_ema >= recipe.advance_at:
            progress = min(1.0, progress + 1 / recipe.ramp_steps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += int(mask.sum())
        copy_sum, loss_sum = copy_sum + copy, loss_sum + loss.item()
        if on_progress:
            on_progress(Progress("train icl", step, recipe.max_steps, loss=loss.item()))
        if step % recipe.eval_every == 0:
            point = {"step": step, "tokens": tokens,
                     "loss": round(loss_sum / recipe.eval_every, 4),
                     "copy_acc": round(copy_sum / recipe.eval_every, 4),
                     "curriculum": round(progress, 3),
                     "minutes": round((time.time() - start) / 60, 2),
                     "cpu_minutes": round((time.process_time() - cpu_start) / 60, 2),
                     **probe(model, tokenizer, tasks, recipe.eval_queries, eval_rng)}
            model.train()
            copy_sum = loss_sum = 0.0
            curve.append(point)
            print(json.dumps(point), flush=True)
    minutes = round((time.time() - start) / 60, 2)
    cpu_minutes = round((time.process_time() - cpu_start) / 60, 2)
    model.eval()
    if recipe.guide_heads > 0:
        model.set_attn_implementation("sdpa")  # the saved model runs like any other
    final = probe(model, tokenizer, tasks, recipe.eval_queries, eval_rng)
    save_model_atomic(model, tokenizer, out)
    (out / "curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in curve))
    manifest = {"recipe": asdict(recipe), "steps": step, "tokens": tokens, "minutes": minutes,
                "cpu_minutes": cpu_minutes,
                "final_probe": final, "curriculum_reached": round(progress, 3),
                "parameters": sum(p.numel() for p in model.parameters()),
                "tokenizer": str(tokenizer_path),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "note": "probe = mean over demo tasks of accuracy on the first eval_queries test "
                        "queries, 0-shot and 8-shot with 8 random training examples; copy_acc = "
                        "argmax accuracy on the labels of repeated keys of training sheets"}
    write_json(out / "manifest.json", manifest, indent=2, sort_keys=False)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--tasks", default="assets/demo/tasks")
    parser.add_argument("--tokenizer", default="assets/models/tokenizer")
    for name, value in asdict(ICLRecipe()).items():
        if isinstance(value, bool):
            parser.add_argument("--" + name.replace("_", "-"),
                                action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument("--" + name.replace("_", "-"), default=value,
                                type=float if value is None else type(value))
    args = vars(parser.parse_args(argv))
    out, tasks, tok = Path(args.pop("out")), Path(args.pop("tasks")), args.pop("tokenizer")
    try:
        recipe = ICLRecipe(**args)
    except ValueError as exc:
        parser.error(str(exc))
    manifest = train(out, tasks, tok, recipe)
    print(json.dumps({k: manifest[k] for k in ("steps", "tokens", "minutes", "final_probe")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
