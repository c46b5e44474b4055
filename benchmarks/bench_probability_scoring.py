"""Batched token-probability scoring vs a one-prompt-at-a-time loop, on the demo probes.

    python benchmarks/bench_probability_scoring.py [--model PATH] [--repeats 5] [--out FILE]
        [--quick] [--markdown]

`--quick` times 1 repeat instead of 5 (what `python -m benchmarks` runs); `--markdown` prints
the result as a markdown table (for `benchmarks/results.md`) instead of the plain line.

Both paths run in the same process on the same model and probes; the script checks they give
the same probabilities (max abs diff), prints the median times and the speed-up, and writes a
small JSON result (default: runs/bench_probability_scoring.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _probes(paths: list[Path]):
    from audits.probes import ProbabilityProbe, load_probes

    probes = []
    for path in paths:
        probes += load_probes(path, ProbabilityProbe)
    return probes


def _time(fn, repeats: int) -> tuple[float, list]:
    fn()  # warm-up (allocator, kernels)
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    demo = ROOT / "assets" / "demo" / "probes"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "baseline"))
    parser.add_argument("--probes", nargs="+", type=Path, default=[
        demo / "target_probability.jsonl", demo / "neighbour_probability.jsonl"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 repeat unless --repeats")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "runs" / "bench_probability_scoring.json")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    missing = [str(p) for p in [Path(args.model), *args.probes] if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)} (build the demo: python -m unlearn "
                     "build-demo, or pass --model / --probes)")

    import torch

    from audits.scoring import score_continuations
    from unlearn.models import load_model

    model, tok = load_model(args.model, device=args.device)
    probes = _probes(args.probes)
    prompts, answers = [p.prompt for p in probes], [p.answer for p in probes]

    def batched():
        return [s.prob for s in score_continuations(model, tok, prompts, answers,
                                                    batch_size=args.batch_size)]

    def loop():
        return [score_continuations(model, tok, [p], [a], batch_size=1)[0].prob
                for p, a in zip(prompts, answers, strict=True)]

    t_batched, p_batched = _time(batched, args.repeats)
    t_loop, p_loop = _time(loop, args.repeats)
    max_diff = max(abs(a - b) for a, b in zip(p_batched, p_loop, strict=True))
    result = {
        "model": args.model, "n_probes": len(probes), "batch_size": args.batch_size,
        "repeats": args.repeats, "device": args.device, "torch_threads": torch.get_num_threads(),
        "batched_seconds": t_batched, "loop_seconds": t_loop, "speedup": t_loop / t_batched,
        "max_abs_prob_diff": max_diff,
        "prompts_per_second_batched": len(probes) / t_batched,
        "prompts_per_second_loop": len(probes) / t_loop,
    }
    if args.markdown:
        print(f"| probes | batch | repeats | batched | one at a time | speed-up | max abs dp |\n"
              f"|---|---|---|---|---|---|---|\n"
              f"| {len(probes)} | {args.batch_size} | {args.repeats} | {t_batched * 1000:.1f} ms "
              f"| {t_loop * 1000:.1f} ms | **{result['speedup']:.2f}x** | {max_diff:.1e} |")
    else:
        print(f"{len(probes)} probes, batch {args.batch_size}, median of {args.repeats}: "
              f"batched {t_batched * 1000:.1f} ms, loop {t_loop * 1000:.1f} ms, "
              f"speed-up {result['speedup']:.1f}x, max |dp| {max_diff:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr if args.markdown else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
