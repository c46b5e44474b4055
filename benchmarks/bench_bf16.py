"""bf16 against fp32 on the demo models: speed of the hot paths and the effect on the results.

    python benchmarks/bench_bf16.py [--quick] [--markdown] [--repeats 3] [--out FILE]

Both dtypes are loaded in one process and every timed path runs interleaved (fp32, bf16,
fp32, bf16, ...) so machine load hits both; the figures are medians and their ratio.

Paths: label generation (`compute_labels` on the first blocks of the demo target text, the
baseline against a reinforced model trained here for a few steps), batched probability scoring
(`score_continuations` on the demo probability probes) and greedy generation (`generate`, 64
tokens). Effect: argmax agreement of the generic labels, probability-familiarity and per-probe
probability differences, greedy-text agreement and the held-out perplexity difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DTYPES = ("float32", "bfloat16")
# sizes: target tokens of the reinforce run and of the labels, probes scored, generation
# prompts x new tokens, perplexity windows
SIZES = {"quick": {"reinforce": 1024, "labels": 512, "probes": 48, "prompts": 2, "tokens": 16,
                   "windows": 4},
         "full": {"reinforce": 16384, "labels": 8192, "probes": None, "prompts": 8,
                  "tokens": 64, "windows": 48}}
MODELS = ROOT / "assets" / "models"
DEMO = ROOT / "assets" / "demo"


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn (A, B, A, B ...) after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def reinforced_model(work: Path, tokens: int) -> str:
    """A reinforced demo model (the baseline trained a few steps on the target text)."""
    from unlearn.data import read_text, truncate_text
    from unlearn.models import load_tokenizer
    from unlearn.reinforce import ReinforceConfig, reinforce

    out = work / "reinforced"
    baseline = str(MODELS / "baseline")
    tok = load_tokenizer(baseline)
    text = truncate_text(tok, read_text(DEMO / "target.txt"), tokens)
    reinforce(baseline, text, out, ReinforceConfig(epochs=1.0, lr=5e-4, block_size=256,
                                                   text_format="paragraphs"))
    return str(out)


def label_argmax(ds) -> list[int]:
    from unlearn.label_store import select_alpha

    ds = select_alpha(ds)
    return [t for row in ds["labels"] for t in row if t != -100]


def run(args) -> dict:
    size = SIZES["quick" if args.quick else "full"]
    work = Path(tempfile.mkdtemp(prefix="bench-bf16-"))
    try:
        return measure(work, reinforced_model(work, size["reinforce"]), size, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, reinf_path: str, size: dict, args) -> dict:
    import torch

    from audits.general import GeneralConfig, perplexity
    from audits.probability import probability_familiarity
    from audits.probes import ProbabilityProbe, load_probes
    from audits.scoring import score_continuations
    from unlearn.anchors import filter_redundant, load_anchors
    from unlearn.data import read_text, truncate_text
    from unlearn.label_runner import LabelConfig, compute_labels
    from unlearn.models import load_model

    models = {dt: {name: load_model(path, dtype=dt)[0]
                   for name, path in (("baseline", str(MODELS / "baseline")),
                                      ("reinforced", reinf_path),
                                      ("unlearned", str(MODELS / "unlearned")))}
              for dt in DTYPES}
    _, tok = load_model(str(MODELS / "baseline"))
    result: dict = {"quick": args.quick, "repeats": args.repeats,
                    "torch_threads": torch.get_num_threads(),
                    "cpu_bf16": bool(getattr(torch.backends.mkldnn, "is_available", bool)())}

    # ---- label generation
    anchors, _ = filter_redundant(load_anchors(DEMO / "anchors.json"))
    text = truncate_text(tok, read_text(DEMO / "target.txt"), size["labels"])
    config = {dt: LabelConfig(block_size=256, batch_size=8, text_format="paragraphs", dtype=dt)
              for dt in DTYPES}
    counter = iter(range(10 ** 6))
    labels: dict[str, object] = {}

    def labels_fn(dt):
        def fn():
            out = work / f"labels-{dt}-{next(counter)}"
            labels[dt] = compute_labels(models[dt]["baseline"], models[dt]["reinforced"], tok,
                                        text, anchors, config[dt], out)
        return fn

    t = interleaved({dt: labels_fn(dt) for dt in DTYPES}, args.repeats)
    a32, a16 = label_argmax(labels["float32"]), label_argmax(labels["bfloat16"])
    agree = sum(x == y for x, y in zip(a32, a16, strict=True)) / len(a32)
    result["labels"] = {"seconds": t, "speedup": t["float32"] / t["bfloat16"],
                        "blocks": len(labels["float32"]), "tokens": len(a32),
                        "argmax_agreement": agree}

    # ---- batched probability scoring and familiarity
    probes = {}
    for kind in ("target", "neighbour"):
        probes[kind] = load_probes(DEMO / "probes" / f"{kind}_probability.jsonl",
                                   ProbabilityProbe)[:size["probes"]]
    allp = probes["target"] + probes["neighbour"]
    prompts, answers = [p.prompt for p in allp], [p.answer for p in allp]
    t = interleaved({dt: (lambda dt=dt: score_continuations(
        models[dt]["baseline"], tok, prompts, answers, batch_size=32)) for dt in DTYPES},
        args.repeats)
    fam = {}
    for name in ("baseline", "unlearned"):
        for kind, ps in probes.items():
            res = {dt: probability_familiarity(models[dt][name], tok, ps) for dt in DTYPES}
            diffs = [abs(a.prob - b.prob) for a, b in
                     zip(res["float32"].items, res["bfloat16"].items, strict=True)]
            fam[f"{name}/{kind}"] = {
                "mean_prob_fp32": res["float32"].familiarity,
                "mean_prob_bf16": res["bfloat16"].familiarity,
                "mean_prob_abs_diff": abs(res["float32"].familiarity - res["bfloat16"].familiarity),
                "max_item_abs_diff": max(diffs),
                "top1_fp32": res["float32"].top1, "top1_bf16": res["bfloat16"].top1}
    result["scoring"] = {"seconds": t, "speedup": t["float32"] / t["bfloat16"],
                         "prompts": len(prompts), "familiarity": fam}

    # ---- greedy generation
    gen_prompts = [p.prompt for p in probes["target"][:size["prompts"]]]
    new_tokens = size["tokens"]
    outs: dict[str, list[list[int]]] = {}

    def gen_fn(dt):
        def fn():
            outs[dt] = []
            for prompt in gen_prompts:
                ids = tok(prompt, return_tensors="pt")
                with torch.no_grad():
                    out = models[dt]["baseline"].generate(
                        **ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                        do_sample=False)
                outs[dt].append(out[0, ids["input_ids"].shape[1]:].tolist())
        return fn

    t = interleaved({dt: gen_fn(dt) for dt in DTYPES}, args.repeats)
    same = sum(a == b for a, b in zip(outs["float32"], outs["bfloat16"], strict=True))
    tok_agree = [sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
                 for a, b in zip(outs["float32"], outs["bfloat16"], strict=True)]
    result["generation"] = {"seconds": t, "speedup": t["float32"] / t["bfloat16"],
                            "prompts": len(gen_prompts), "new_tokens": new_tokens,
                            "identical_texts": same,
                            "mean_token_agreement": statistics.mean(tok_agree)}

    # ---- held-out perplexity
    held = read_text(DEMO / "general_heldout.txt")
    gconf = GeneralConfig(block_size=256, max_windows=size["windows"])
    ppl = {}
    for name in ("baseline", "unlearned"):
        p = {dt: perplexity(models[dt][name], tok, held, gconf).perplexity for dt in DTYPES}
        ppl[name] = {"fp32": p["float32"], "bf16": p["bfloat16"],
                     "relative_diff": abs(p["bfloat16"] - p["float32"]) / p["float32"]}
    result["perplexity"] = ppl
    return result


def markdown(r: dict) -> str:
    lab, sc, gen = r["labels"], r["scoring"], r["generation"]
    lines = [f"**bf16 vs fp32** (demo models, {r['torch_threads']} torch thread(s), "
             f"median of {r['repeats']} interleaved runs{', quick' if r['quick'] else ''})", "",
             "| path | fp32 s | bf16 s | speed-up | effect |", "|---|---|---|---|---|",
             f"| label generation ({lab['blocks']} blocks) | {lab['seconds']['float32']:.3f} | "
             f"{lab['seconds']['bfloat16']:.3f} | {lab['speedup']:.2f}x | argmax agreement "
             f"{lab['argmax_agreement']:.2%} of {lab['tokens']} labels |",
             f"| batched probability scoring ({sc['prompts']} probes) | "
             f"{sc['seconds']['float32']:.3f} | {sc['seconds']['bfloat16']:.3f} | "
             f"{sc['speedup']:.2f}x | see familiarity below |",
             f"| greedy generation ({gen['prompts']} x {gen['new_tokens']} tokens) | "
             f"{gen['seconds']['float32']:.3f} | {gen['seconds']['bfloat16']:.3f} | "
             f"{gen['speedup']:.2f}x | {gen['identical_texts']}/{gen['prompts']} identical "
             f"texts, {gen['mean_token_agreement']:.1%} tokens agree |", "",
             "| model / probes | mean prob fp32 | mean prob bf16 | abs diff | max item diff |",
             "|---|---|---|---|---|"]
    for key, f in sc["familiarity"].items():
        lines.append(f"| {key} | {f['mean_prob_fp32']:.4f} | {f['mean_prob_bf16']:.4f} | "
                     f"{f['mean_prob_abs_diff']:.4f} | {f['max_item_abs_diff']:.4f} |")
    lines += ["", "| model | held-out perplexity fp32 | bf16 | relative diff |",
              "|---|---|---|---|"]
    for name, p in r["perplexity"].items():
        lines.append(f"| {name} | {p['fp32']:.3f} | {p['bf16']:.3f} | "
                     f"{p['relative_diff']:.2%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per dtype (default 1 quick, 3 full)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_bf16.json")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    missing = [str(p) for p in (MODELS / "baseline", MODELS / "unlearned", DEMO / "target.txt")
               if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)} (build the demo first)")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result) if args.markdown else json.dumps(result, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
