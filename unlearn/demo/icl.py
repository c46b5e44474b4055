"""Recipe for a tiny model that learns the demo tasks *in context* (associative-recall sheets).

Training text is "exercise sheets": lines in the demo task format (`input` + prompt + answer)
whose key -> label map is drawn afresh for every sheet, from the pooled keys and labels of all demo
task families. A label can then only be predicted by finding an earlier line with the same key
(multi-query associative recall, Arora et al. 2023), and the loss is put on the label tokens only.
Zero-shot accuracy on the real tasks stays at chance by construction; k-shot accuracy measures
in-context learning. `python -m unlearn.demo.icl --out DIR --minutes 25` writes the model, its
manifest (recipe, time) and the learning curve (`curve.jsonl`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from unlearn.demo.tasks import SPECS, TaskSpec
from unlearn.erase.evaluate import right_pad
from unlearn.runtime import write_text


@dataclass
class ICLRecipe:
    hidden_size: int = 64  # tiny Llama width (the machine is shared: compute is the limit)
    layers: int = 2  # induction needs >= 2
    heads: int = 2
    lines_per_sheet: int = 16  # demonstrations per training sequence
    keys_per_sheet: int = 4  # distinct keys on one sheet (each seen ~4 times)
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 100
    minutes: float = 25.0  # wall-clock budget; training stops there
    max_steps: int = 20_000
    eval_every: int = 250
    eval_queries: int = 96
    seed: int = 0
    threads: int = 1


def _fill(spec: TaskSpec, key: str, rng: random.Random) -> str:
    return spec.template.format(key=key, **{s: rng.choice(v) for s, v in spec.slots.items()})


def sheet(rng: random.Random, recipe: ICLRecipe) -> list[tuple[str, str]]:
    """(text before the label, label text) pairs; the key -> label map is new on every sheet."""
    spec = rng.choice(SPECS)
    labels = [label for s in SPECS for label in s.labels]
    keys = rng.sample(list(spec.keys), recipe.keys_per_sheet)
    mapping = {k: rng.choice(labels) for k in keys}
    pieces = []
    for n in range(recipe.lines_per_sheet):
        key = rng.choice(keys)
        line = spec.prompt.format(input=_fill(spec, key, rng))
        pieces.append((("\n" if n else "") + line, spec.answer.format(output=mapping[key])))
    return pieces


def encode_sheet(tokenizer, pieces: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids with BOS, and labels (-100 everywhere except the answer tokens)."""
    ids = [tokenizer.bos_token_id]
    labels = [-100]
    for text, answer in pieces:
        t = tokenizer.encode(text, add_special_tokens=False)
        a = tokenizer.encode(answer, add_special_tokens=False)
        ids += t + a
        labels += [-100] * len(t) + a
    return ids, labels


def build_model(tokenizer, recipe: ICLRecipe) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=recipe.hidden_size,
                         intermediate_size=int(recipe.hidden_size * 8 / 3),
                         num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads,
                         num_key_value_heads=recipe.heads, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(recipe.seed)
    return LlamaForCausalLM(config)


def _batch(tokenizer, rng: random.Random, recipe: ICLRecipe):
    rows = [encode_sheet(tokenizer, sheet(rng, recipe)) for _ in range(recipe.batch_size)]
    ids, mask, labels = right_pad([i for i, _ in rows], tokenizer.pad_token_id,
                                  [lab for _, lab in rows])
    return ids, labels, mask


def label_loss(model, ids, mask, labels) -> torch.Tensor:
    """Next-token loss on the label tokens only, projecting only those positions onto the vocab."""
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, H)
    targets = labels[:, 1:]
    keep = targets != -100  # (B, T-1)
    logits = model.lm_head(hidden[:, :-1][keep]).float()  # (N, V)
    return torch.nn.functional.cross_entropy(logits, targets[keep])


def _probe(model, tokenizer, tasks, recipe: ICLRecipe, rng: random.Random) -> dict[str, float]:
    """Mean accuracy over the demo tasks: 0-shot and 8-shot with random training examples."""
    from unlearn.erase.evaluate import accuracy

    out = {"acc0": 0.0, "acc8": 0.0}
    for task in tasks:
        queries = task.test[:recipe.eval_queries]
        out["acc0"] += accuracy(model, tokenizer, task, [], queries) / len(tasks)
        out["acc8"] += accuracy(model, tokenizer, task, rng.sample(task.train, 8),
                                queries) / len(tasks)
    model.train()
    return out


def train(out: Path, tasks_dir: Path, tokenizer_path: str, recipe: ICLRecipe) -> dict:
    from unlearn.erase.task import load_task

    torch.set_num_threads(recipe.threads)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    tasks = [load_task(tasks_dir / s.name) for s in SPECS]
    model = build_model(tokenizer, recipe)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    rng, eval_rng = random.Random(recipe.seed), random.Random(recipe.seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    curve_path = out / "curve.jsonl"
    curve_path.write_text("")
    start, tokens, step = time.time(), 0, 0
    model.train()
    while step < recipe.max_steps and time.time() - start < recipe.minutes * 60:
        lr_scale = min(1.0, (step + 1) / recipe.warmup_steps)
        for group in opt.param_groups:
            group["lr"] = recipe.lr * lr_scale
        ids, labels, mask = _batch(tokenizer, rng, recipe)
        loss = label_loss(model, ids, mask, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += int(mask.sum())
        if step % recipe.eval_every == 0:
            point = {"step": step, "tokens": tokens, "loss": round(loss.item(), 4),
                     "minutes": round((time.time() - start) / 60, 2),
                     **_probe(model, tokenizer, tasks, recipe, eval_rng)}
            with curve_path.open("a") as f:
                f.write(json.dumps(point) + "\n")
            print(json.dumps(point), flush=True)
    model.eval()
    final = _probe(model, tokenizer, tasks, recipe, eval_rng)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    manifest = {"recipe": asdict(recipe), "steps": step, "tokens": tokens,
                "minutes": round((time.time() - start) / 60, 2), "final_probe": final,
                "parameters": sum(p.numel() for p in model.parameters()),
                "note": "probe = mean over demo tasks of accuracy on the first eval_queries test "
                        "queries, 0-shot and 8-shot with 8 random training examples"}
    write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--tasks", default="assets/demo/tasks")
    parser.add_argument("--tokenizer", default="assets/models/tokenizer")
    parser.add_argument("--minutes", type=float, default=ICLRecipe.minutes)
    parser.add_argument("--layers", type=int, default=ICLRecipe.layers)
    parser.add_argument("--hidden-size", type=int, default=ICLRecipe.hidden_size)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    recipe = ICLRecipe(minutes=args.minutes, layers=args.layers, hidden_size=args.hidden_size,
                       seed=args.seed)
    manifest = train(Path(args.out), Path(args.tasks), args.tokenizer, recipe)
    print(json.dumps({k: manifest[k] for k in ("steps", "tokens", "minutes", "final_probe")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
