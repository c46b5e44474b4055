"""Resident memory of the app's two sides: two full models vs one base + a LoRA adapter.

    python benchmarks/bench_shared_base.py [--runs 3] [--markdown] [--out FILE]

Makes a LoRA adapter of the demo baseline with the project's finetune (`python -m unlearn
comparison --method ga --lora --lora-adapter`, a few steps, into a temporary folder), then loads
the two sides the way the app does (`ui.store.ModelStore`) in fresh processes, alternating the
modes: "two models" = the baseline and the finetune's merged model, "shared base" = the baseline
and the adapter. Each child reports the growth of its resident set size (RSS) from before the
loads (after a warm-up load, freed) to after one forward pass of each side, the store's own
weight count, and the largest logit difference between the adapter side and the merged model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from unlearn.runtime import write_text  # noqa: E402

BASELINE = ROOT / "assets" / "models" / "baseline"
MB = 1024 ** 2


def make_adapter(work: Path) -> Path:
    """A GA + LoRA finetune of the demo baseline for 4 steps; returns its run folder."""
    run = work / "lora_run"
    cmd = [sys.executable, "-m", "unlearn", "comparison", "--method", "ga", "--baseline",
           str(BASELINE), "--target", str(ROOT / "assets" / "demo" / "target.txt"),
           "--max-target-tokens", "2048", "--out", str(run), "--steps", "4", "--batch-size",
           "2", "--block-size", "128", "--lr", "1e-3", "--lora", "--lora-adapter"]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return run


def child(mode: str, run: Path) -> dict:
    """Load both sides in this (fresh) process; RSS growth and checks."""
    import gc

    import peft  # noqa: F401 - imported before the first reading in both modes
    import psutil
    import torch

    from ui.store import ModelStore
    from unlearn.models import load_model

    proc = psutil.Process()
    other = run / ("adapter" if mode == "shared" else "final")
    ids = torch.tensor([[0, 5, 9, 14, 27, 33, 41, 50]])
    # warm-up: code paths, tokenizer and allocator, so the reading counts the models only
    warm, _ = load_model(str(BASELINE))
    with torch.no_grad():
        warm(input_ids=ids)
    del warm
    gc.collect()
    before = proc.memory_info().rss
    store = ModelStore()
    sides = [store.get(str(BASELINE)), store.get(str(other))]
    with torch.no_grad():
        logits = [s.model(input_ids=ids).logits for s in sides]
    after = proc.memory_info().rss
    merged, _ = load_model(str(run / "final"))
    with torch.no_grad():
        diff = (logits[1] - merged(input_ids=ids).logits).abs().max().item()
    return {"mode": mode, "rss_growth_mb": (after - before) / MB,
            "weights_mb": store.footprint_gb() * 1024, "max_logit_diff_vs_merged": diff}


def run_bench(runs: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-shared-base-"))
    try:
        run = make_adapter(work)
        rows: dict[str, list[dict]] = {"two": [], "shared": []}
        for _ in range(runs):
            for mode in ("two", "shared"):
                out = subprocess.run([sys.executable, __file__, "--child", mode, str(run)],
                                     check=True, cwd=ROOT, capture_output=True, text=True)
                rows[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"runs": runs}
    for mode, rs in rows.items():
        result[mode] = {"rss_growth_mb": statistics.median(r["rss_growth_mb"] for r in rs),
                        "rss_growth_mb_all": [round(r["rss_growth_mb"], 1) for r in rs],
                        "weights_mb": rs[0]["weights_mb"],
                        "max_logit_diff_vs_merged": max(r["max_logit_diff_vs_merged"]
                                                        for r in rs)}
    result["rss_ratio_shared_over_two"] = (result["shared"]["rss_growth_mb"]
                                           / result["two"]["rss_growth_mb"])
    return result


def markdown(r: dict) -> str:
    two, shared = r["two"], r["shared"]
    return "\n".join([
        f"**Shared base on the demo** (RSS growth while loading both sides, median of "
        f"{r['runs']} fresh processes per mode, alternating)", "",
        "| mode | RSS growth | weights held (store) | adapter side vs merged model |",
        "|---|---|---|---|",
        f"| two full models | {two['rss_growth_mb']:.1f} MB | {two['weights_mb']:.1f} MB | "
        f"{two['max_logit_diff_vs_merged']:.1e} (it is the merged model) |",
        f"| shared base + LoRA adapter | {shared['rss_growth_mb']:.1f} MB | "
        f"{shared['weights_mb']:.1f} MB | max logit diff "
        f"{shared['max_logit_diff_vs_merged']:.1e} |", "",
        f"Shared / two: {r['rss_ratio_shared_over_two']:.2f}x RSS growth.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per mode (default 3)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="one process per mode (the python -m benchmarks setting)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_shared_base.json")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if not (BASELINE / "config.json").is_file():
        parser.error(f"demo baseline not found at {BASELINE}")
    result = run_bench(args.runs)
    write_text(args.out, json.dumps(result, indent=1) + "\n")  # atomic, folder made
    print(markdown(result) if args.markdown else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
