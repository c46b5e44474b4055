"""Do the demo models really know their world? (issues 2 and 9)

Measures, for each model, on the demo probes: target token-probability top-1 and mean answer
probability, the same on the paraphrase probes (held-out registers: Q&A, quiz card, dialogue,
note, list), two-choice trivia, completion familiarity (rule judge, greedy), the same on the
neighbour saga, the general sets (the next word of held-out everyday text: 4 options, and open
vocabulary), each model against the first on them item by item (exact McNemar), and held-out
perplexity, plus sample completions of five target prompts. All in one run.

    python benchmarks/demo_knowledge.py [--model NAME=PATH ...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audits.familiarity import CompletionConfig, completion_familiarity  # noqa: E402
from audits.forget_measures import paired_sign_test  # noqa: E402
from audits.general import general_mc, perplexity  # noqa: E402
from audits.generation import GenerationConfig, generate  # noqa: E402
from audits.judges import RuleJudge  # noqa: E402
from audits.probability import probability_familiarity  # noqa: E402
from audits.probes import load_suite  # noqa: E402
from audits.trivia import trivia_accuracy  # noqa: E402
from unlearn.models import load_model  # noqa: E402

DEFAULT_MODELS = [f"{n}={ROOT / 'assets' / 'models' / n}" for n in ("baseline", "reference")]


def measure(path: str, suite, samples: int) -> dict:
    model, tok = load_model(path)
    t0 = time.perf_counter()
    out: dict = {}
    paired: dict[str, list[bool]] = {}  # per-item right/wrong, for the paired tests
    greedy = CompletionConfig(generation=GenerationConfig(max_new_tokens=32, temperature=0.0))
    for side in ("target", "neighbour"):
        prob = probability_familiarity(model, tok, getattr(suite, f"{side}_probability"))
        out[f"{side}_probability_top1"] = prob.top1
        out[f"{side}_probability_mean"] = prob.familiarity
        para = getattr(suite, f"{side}_paraphrase")
        if para:
            para = probability_familiarity(model, tok, para)
            out[f"{side}_paraphrase_top1"] = para.top1
            out[f"{side}_paraphrase_mean"] = para.familiarity
        out[f"{side}_trivia_accuracy"] = trivia_accuracy(
            model, tok, getattr(suite, f"{side}_trivia")).accuracy
        judge = RuleJudge.from_world(suite.world, side=side)
        out[f"{side}_completion_familiarity"] = completion_familiarity(
            model, tok, getattr(suite, f"{side}_completion"), judge, greedy).score
    mc = general_mc(model, tok, suite.general_mc)
    out["general_mc_accuracy"] = mc.accuracy
    cloze = probability_familiarity(model, tok, suite.general_cloze)
    out["general_cloze_top1"] = cloze.top1
    out["general_cloze_mean"] = cloze.familiarity
    paired["general_mc"] = [it.is_correct for it in mc.items]
    paired["general_cloze"] = [it.top1 for it in cloze.items]
    out["general_perplexity"] = perplexity(model, tok, suite.heldout_text).perplexity
    prompts = [p.prompt for p in suite.target_completion[:: max(1, len(
        suite.target_completion) // samples)][:samples]]
    completions = generate(model, tok, prompts, GenerationConfig(max_new_tokens=24,
                                                                 temperature=0.0))
    out["samples"] = [{"prompt": p, "completion": c}
                      for p, c in zip(prompts, completions, strict=True)]
    out["paired"] = paired
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def paired_lines(results: dict) -> list[str]:
    """Each model against the first on the general sets, item by item (exact McNemar)."""
    first, *others = results
    lines = []
    for name in others:
        for key, right in results[name]["paired"].items():
            b, c, p = paired_sign_test(results[first]["paired"][key], right)
            lines.append(f"{key}: {name} vs {first}: {b} items only {first} gets, {c} only "
                         f"{name} gets, p = {p:.2g}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="NAME=PATH (repeatable)")
    p.add_argument("--suite", default="demo", help='"demo" or a suite folder')
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = p.parse_args(argv)
    suite = load_suite(args.suite)
    results = {}
    for spec in args.model or DEFAULT_MODELS:
        name, _, path = spec.partition("=")
        if not path:
            p.error(f"--model needs NAME=PATH, got {spec!r}")
        results[name] = measure(path, suite, args.samples)
    keys = [k for k in next(iter(results.values()))
            if k not in ("samples", "seconds", "paired")]
    print(f"{'measure':<34}" + "".join(f"{n:>14}" for n in results))
    for k in keys:
        print(f"{k:<34}" + "".join(f"{r.get(k, float('nan')):>14.3f}"
                                   for r in results.values()))
    if args.markdown:
        print("\n| measure | " + " | ".join(results) + " |")
        print("|---|" + "---|" * len(results))
        for k in keys:
            print(f"| {k} | " + " | ".join(f"{r.get(k, float('nan')):.3f}"
                                            for r in results.values()) + " |")
    print("\n== paired tests on the general sets")
    for line in paired_lines(results):
        print("  " + line)
    for name, r in results.items():
        print(f"\n== sample greedy completions: {name}")
        for s in r["samples"]:
            print(f"  {s['prompt']!r}\n    -> {s['completion']!r}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
