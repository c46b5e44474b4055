"""`python -m unlearn erase select|delete|evaluate|cost ...` on a task folder (docs/CONTRACTS.md).

select   embeds the training split, runs Q-k-means, writes a state folder (the chosen prompt)
delete   exactly unlearns examples from a state folder (certificate or recompute), logs it
evaluate accuracy on the test split for erase / random / autocot / zero-shot (/ sisa)
cost     measures unit costs, writes the cost chart (HTML) and its numbers (JSON)
Usage errors exit with code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from unlearn.erase.embeddings import EmbeddingConfig
from unlearn.erase.qkmeans import QKMeansConfig
from unlearn.erase.select import METHODS
from unlearn.erase.sisa import SISAConfig

ALL_METHODS = (*METHODS, "sisa")


def _write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _methods(value: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in value.split(",") if m.strip())
    bad = [m for m in names if m not in ALL_METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown methods {bad}; choose from {list(ALL_METHODS)}")
    return names


def _selection_args(p: argparse.ArgumentParser) -> None:
    d, e = QKMeansConfig(), EmbeddingConfig()
    p.add_argument("--model", required=True, help="causal LM folder or hub id (embeds, answers)")
    p.add_argument("--task", required=True, help="task folder (task.json, train/test.jsonl)")
    p.add_argument("--k", type=int, default=d.k, help="in-context examples")
    p.add_argument("--eps", type=float, default=d.eps, help="Q-k-means grid step")
    p.add_argument("--iters", type=int, default=d.iters, help="Lloyd iterations T")
    p.add_argument("--gamma", type=float, default=d.gamma, help="balance floor (gamma n / k)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--pca-dim", type=int, default=e.pca_dim, help="0 = no PCA")
    p.add_argument("--sentence-model", default=None, help="sentence-transformers model to embed")
    p.add_argument("--cache", default=None, help="embedding cache folder")
    p.add_argument("--device", default="cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unlearn erase", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("select", help="choose the k prompt examples; write a state folder")
    _selection_args(p)
    p.add_argument("--state", required=True, help="state folder to write")
    p = sub.add_parser("delete", help="unlearn training examples from a state folder")
    p.add_argument("--state", required=True)
    p.add_argument("--ids", required=True, help="comma-separated example ids")
    p.add_argument("--batch", action="store_true", help="one request for all ids")
    p = sub.add_parser("evaluate", help="test accuracy per selection method")
    _selection_args(p)
    p.add_argument("--methods", type=_methods, default=METHODS, help=",".join(ALL_METHODS))
    p.add_argument("--n-test", type=int, default=None, help="first N test examples only")
    p.add_argument("--shards", type=int, default=SISAConfig.shards, help="SISA shards")
    p.add_argument("--sisa-epochs", type=int, default=SISAConfig.epochs)
    p.add_argument("--out", required=True, help="JSON file to write")
    p = sub.add_parser("cost", help="measure unit costs; write cost chart (HTML) and numbers")
    _selection_args(p)
    p.add_argument("--shards", type=int, default=SISAConfig.shards)
    p.add_argument("--sisa-epochs", type=int, default=SISAConfig.epochs)
    p.add_argument("--deletions", type=int, default=100, help="deletions to time")
    p.add_argument("--out-html", required=True)
    p.add_argument("--out-json", required=True)
    return parser


def _configs(args) -> tuple[QKMeansConfig, EmbeddingConfig]:
    return (QKMeansConfig(k=args.k, eps=args.eps, iters=args.iters, gamma=args.gamma,
                          seed=args.seed),
            EmbeddingConfig(pca_dim=args.pca_dim or None, sentence_model=args.sentence_model))


def _load(args):
    from unlearn.erase.task import load_task
    from unlearn.models import load_model

    task = load_task(args.task)
    model, tokenizer = load_model(args.model, device=args.device)
    return task, model, tokenizer


def _embed(args, task, model, tokenizer, econfig):
    from unlearn.erase.embeddings import embed_texts

    return embed_texts([ex.input for ex in task.train], econfig, model, tokenizer,
                       cache_dir=args.cache, data_key=task.fingerprint())


def cmd_select(args) -> int:
    from unlearn.erase.qkmeans import fit
    from unlearn.erase.store import save_state

    qconfig, econfig = _configs(args)
    task, model, tokenizer = _load(args)
    x = _embed(args, task, model, tokenizer, econfig)
    start = time.perf_counter()
    state = fit(x, [ex.id for ex in task.train], qconfig)
    meta = {"task": str(args.task), "model": str(args.model), "embedding": econfig.__dict__,
            "select_seconds": time.perf_counter() - start}
    save_state(args.state, state, meta)
    print(json.dumps({"state": args.state, "prompt_ids": state.prompt_ids()}))
    return 0


def cmd_delete(args) -> int:
    from unlearn.erase.qkmeans import delete
    from unlearn.erase.store import load_state, save_state

    state, meta = load_state(args.state)
    ids = [i.strip() for i in args.ids.split(",") if i.strip()]
    requests = [ids] if args.batch else [[i] for i in ids]
    for request in requests:
        record = delete(state, request)
        print(json.dumps({"ids": record.ids, "action": record.action, "reason": record.reason,
                          "seconds": round(record.seconds, 6)}))
    save_state(args.state, state, meta)
    return 0


def cmd_evaluate(args) -> int:
    from unlearn.erase.evaluate import evaluate_methods
    from unlearn.erase.select import select_all
    from unlearn.erase.sisa import sisa_accuracy, train_sisa

    qconfig, econfig = _configs(args)
    task, model, tokenizer = _load(args)
    if args.n_test:
        task.test = task.test[: args.n_test]
    chosen = [m for m in args.methods if m != "sisa"]
    needs_x = any(m in ("erase", "autocot") for m in chosen)
    x = _embed(args, task, model, tokenizer, econfig) if needs_x else None
    if x is None:
        import numpy as np
        x = np.zeros((len(task.train), 1))
    selected, _ = select_all(x, [ex.id for ex in task.train], qconfig, tuple(chosen))
    by_id = {ex.id: ex for ex in task.train}
    shots = {m: [by_id[i] for i in ids] for m, ids in selected.items()}
    progress = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    accuracy = evaluate_methods(model, tokenizer, task, shots, on_progress=progress)
    if "sisa" in args.methods:
        sisa = train_sisa(model, tokenizer, task,
                          SISAConfig(shards=args.shards, epochs=args.sisa_epochs, seed=args.seed),
                          on_progress=progress)
        accuracy["sisa"] = sisa_accuracy(sisa, tokenizer, task)
    ceiling = {m: task.recall_ceiling(s, task.test) for m, s in shots.items()}
    result = {"task": task.name, "k": args.k, "accuracy": accuracy, "n_test": len(task.test),
              "key_coverage": ceiling if task.keys else None, "selected": selected,
              "model": str(args.model), "seed": args.seed,
              "config": {"qkmeans": qconfig.__dict__, "embedding": econfig.__dict__}}
    _write_json(args.out, result)
    print(json.dumps({"task": task.name, "k": args.k, "accuracy": accuracy}))
    return 0


def cmd_cost(args) -> int:
    from unlearn.erase.cost import cost_figure, llama2_7b_estimate, summary
    from unlearn.erase.measure import measure_unit_costs

    qconfig, econfig = _configs(args)
    task, model, tokenizer = _load(args)
    sisa_config = SISAConfig(shards=args.shards, epochs=args.sisa_epochs, seed=args.seed)
    units, raw = measure_unit_costs(model, tokenizer, task, qconfig, econfig, sisa_config,
                                    deletions=args.deletions,
                                    on_progress=lambda m: print(m, file=sys.stderr))
    tokens = sum(len(tokenizer.encode(task.shot(ex), add_special_tokens=False))
                 for ex in task.train[:200]) / min(200, len(task.train))
    llama = llama2_7b_estimate(args.k, tokens, len(task.train), args.shards, args.sisa_epochs,
                               emb_dim=args.pca_dim or 4096, iters=args.iters,
                               recompute_rate=units.recompute_rate)
    html = Path(args.out_html)
    html.parent.mkdir(parents=True, exist_ok=True)
    with html.open("w", encoding="utf-8") as f:
        f.write(cost_figure(units).to_html(full_html=True, include_plotlyjs="cdn"))
        f.write(cost_figure(llama).to_html(full_html=False, include_plotlyjs=False))
    _write_json(args.out_json, {"task": task.name, "demo": summary(units), "raw": raw,
                                "llama2_7b": summary(llama), "tokens_per_example": tokens})
    print(json.dumps({"demo": summary(units)["break_even_queries"],
                      "llama2_7b": summary(llama)["break_even_queries"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"select": cmd_select, "delete": cmd_delete, "evaluate": cmd_evaluate,
                "cost": cmd_cost}
    try:
        return handlers[args.command](args)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
        # a KeyError's str() is its repr, quotes and all: print its message
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
