"""The thread policy (unlearn.runtime) vs torch's default thread count, with and without an
artificial competing load (one busy-loop process per usable core).

    python benchmarks/bench_threads.py [--quick] [--markdown] [--repeats 4] [--out FILE]

Two workloads on the demo baseline (and unlearned) model:
* batched scoring: `audits.scoring.score_continuations` over 64 prompt/continuation pairs
  (policy: `pool_threads()`, the free cores; default: torch's, one thread per usable core);
* one generation stream (one pane) and side by side (two panes), 32 greedy tokens each (policy:
  one thread per stream; default: torch's count in each generate thread).
The thread count is forced through the policy's own override (`WHP_THREADS`). Within each phase
the two settings run back to back (A, B, A, B, ...); a ratio is the median of the per-pair
ratios default / policy (above 1: the policy is faster).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from audits.scoring import score_continuations  # noqa: E402
from ui.streaming import GenerationSettings, stream_side_by_side  # noqa: E402
from unlearn.models import load_model  # noqa: E402
from unlearn.runtime import (  # noqa: E402
    THREADS_ENV,
    pool_threads,
    stream_threads,
    usable_cores,
    write_json,  # noqa: E402
)

TEXT = ("The old teacher opened the door and looked at the children in the castle library "
        "after lunch while the young wizard read a letter from his friend about the match")
WORDS = TEXT.split(" ")


def _spin() -> None:  # a competing process: one core kept busy
    while True:
        pass


@contextmanager
def busy_load(n: int):
    """`n` busy-loop processes for the duration of the block (ended by their handles)."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let them get scheduled
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5)


@contextmanager
def forced_threads(n: int):
    before = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(n)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = before


def run_phase(workloads: dict, default: int, repeats: int) -> dict[str, dict]:
    """Per workload: the policy's pick, and the times of default vs policy, interleaved."""
    out = {}
    for name, (fn, policy) in workloads.items():
        pick = policy()
        times = {"default": [], "policy": []}
        for threads in (default, pick):  # warm-up
            with forced_threads(threads):
                fn()
        for _ in range(repeats):
            for key, threads in (("default", default), ("policy", pick)):
                with forced_threads(threads):
                    start = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - start)
        ratio = statistics.median(d / p for d, p in zip(times["default"], times["policy"],
                                                         strict=True))
        out[name] = {"policy_threads": pick, "default_threads": default, "ratio": ratio,
                     "times_s": times}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, smaller workloads")
    ap.add_argument("--markdown", action="store_true", help="print the results as markdown")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "threads.json"))
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    models = ROOT / "assets" / "models"
    if not (models / "unlearned" / "config.json").is_file():
        ap.error("demo models missing (python -m unlearn build-demo)")
    base, tok = load_model(str(models / "baseline"))
    second, tok2 = load_model(str(models / "unlearned"))
    n_pairs, n_tokens = (32, 16) if args.quick else (64, 32)
    prompts = [" ".join(WORDS[i % 7:i % 7 + 12]) for i in range(n_pairs)]
    conts = [" " + " ".join(WORDS[i % 5 + 12:i % 5 + 16]) for i in range(n_pairs)]
    settings = GenerationSettings(max_new_tokens=n_tokens, min_new_tokens=n_tokens, temperature=0)

    def scoring():
        score_continuations(base, tok, prompts, conts, batch_size=32)

    def side_by_side():
        for _ in stream_side_by_side([(base, tok), (second, tok2)], prompts[0], settings,
                                     threading.Event()):
            pass

    def one_stream():
        for _ in stream_side_by_side([(base, tok)], prompts[0], settings, threading.Event()):
            pass

    workloads = {"batched scoring": (scoring, pool_threads),
                 "one generation stream": (one_stream, stream_threads),
                 "side by side (2 streams)": (side_by_side, stream_threads)}
    default = usable_cores()  # what torch uses when OMP_NUM_THREADS is not set
    phases = {"no added load": run_phase(workloads, default, repeats)}
    with busy_load(usable_cores()):
        phases[f"{usable_cores()} busy-loop processes"] = run_phase(workloads, default, repeats)
    head = (f"torch {torch.__version__}, {usable_cores()} usable CPUs, load average now "
            f"{os.getloadavg()[0]:.1f}, {repeats} interleaved runs per setting")
    if args.markdown:
        print(f"### Thread policy ({head})\n")
        print("| competing load | workload | default threads | policy threads | "
              "default / policy time |")
        print("|---|---|---|---|---|")
        for phase, res in phases.items():
            for name, r in res.items():
                print(f"| {phase} | {name} | {r['default_threads']} | {r['policy_threads']} | "
                      f"{r['ratio']:.2f}x |")
    else:
        print(head)
        for phase, res in phases.items():
            for name, r in res.items():
                print(f"{phase:24} {name:26} default {r['default_threads']} / policy "
                      f"{r['policy_threads']} threads: {r['ratio']:.2f}x")
    write_json(args.out, {"header": head, "phases": phases}, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
