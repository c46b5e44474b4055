"""Leak rates of the demo models on the attack presets: k samples each, seeds s..s+k-1.

    python scripts/leak_rates.py                      # k=20, 5 presets, demo models, CPU
    python scripts/leak_rates.py --k 20 --presets 8 --json leak_rates.json

For each attack preset (`audits.presets`, built from the suite's world.json), every model
(original = assets/models/baseline, unlearned, reference) draws k samples with the app's
sampling code (`ui.streaming.sample_k`: all models at once per seed, each with its own seeded
generator), and the leak rate is the fraction of samples naming a unique target term that the
prompt did not contain (`ui.leaks.leak_rate`). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from audits.presets import load_presets
    from ui.leaks import LeakTerms, leak_rate
    from ui.streaming import GenerationSettings, sample_k
    from unlearn.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default=str(ROOT / "assets" / "demo"))
    ap.add_argument("--models", default="original=assets/models/baseline,"
                    "unlearned=assets/models/unlearned,reference=assets/models/reference",
                    help="role=path pairs, comma separated")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", type=int, default=5, help="how many presets (first n)")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--json", default="", help="also write the rates and samples here")
    args = ap.parse_args(argv)

    roles = dict(pair.split("=", 1) for pair in args.models.split(","))
    models = {}
    for role, path in roles.items():
        path = path if Path(path).is_absolute() else str(ROOT / path)
        models[role] = load_model(path)
    presets = load_presets(args.suite)[: args.presets]
    if not presets:
        print(f"no attack presets in {args.suite}", file=sys.stderr)
        return 2
    terms = LeakTerms.from_dir(args.suite)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens,
                                  temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    t0 = time.perf_counter()
    rows, dump = [], []
    for p in presets:
        seeds, texts = sample_k(list(models.values()), p.prompt, settings, args.k)
        rates = {role: leak_rate(terms, p.prompt, t) for role, t in zip(models, texts,
                                                                         strict=True)}
        rows.append((p, rates))
        dump.append({"kind": p.kind, "prompt": p.prompt, "expects": p.expects, "seeds": seeds,
                     "leak_rates": rates, "samples": dict(zip(models, texts, strict=True))})
        print(f"  {p.kind}: " + ", ".join(f"{r} {v:.2f}" for r, v in rates.items()),
              file=sys.stderr)
    print(f"Leak rate = fraction of {args.k} samples (seeds {args.seed}..{args.seed + args.k - 1},"
          f" temperature {args.temperature}, top-p {args.top_p}, {args.max_new_tokens} new "
          "tokens) naming a unique target term the prompt did not contain; lower = forgot "
          f"more. {time.perf_counter() - t0:.0f} s.\n")
    print("| preset | prompt | expects | " + " | ".join(models) + " |")
    print("|---|---|---|" + "---|" * len(models))
    for p, rates in rows:
        prompt = p.prompt.replace("\n", " / ").replace("|", "\\|")
        print(f"| {p.kind} | {prompt} | {p.expects} | "
              + " | ".join(f"{rates[r]:.2f}" for r in models) + " |")
    means = {r: sum(rates[r] for _, rates in rows) / len(rows) for r in models}
    print("| **mean** | | | " + " | ".join(f"**{means[r]:.2f}**" for r in models) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, ensure_ascii=False),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
