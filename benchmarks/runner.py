"""`python -m benchmarks`: every registered benchmark in its quick mode, into `results.md`.

    python -m benchmarks                      # all, then rewrite benchmarks/results.md
    python -m benchmarks --list               # the registry (and what is left out, and why)
    python -m benchmarks --only side_by_side  # one (repeatable); prints, writes only with --out

First the machine's fp32 matmul peak is measured (GFLOP/s on 1 thread and on all cores), then
each benchmark runs as its own process: `python benchmarks/<script> <quick args>`. A registered
script takes `--quick` (settings that fit the 15-minute budget) and `--markdown` (its results,
ratios first, as markdown on stdout; other chatter on stderr); its stdout becomes its section of
`results.md`. A benchmark that fails or times out is reported with its error and the others still
run; a script not in the tree is reported as missing. `results.md` is replaced in one rename, so
an interrupted run leaves the previous file as it was.

The environment is passed through unchanged (plus HF_HUB_OFFLINE=1): set OMP_NUM_THREADS or
`nice` around the whole run if the machine is shared; the thread benchmarks set their own.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
BUDGET_S = 15 * 60  # the whole run, quick settings, on the 2-core development machine


@dataclass(frozen=True)
class Benchmark:
    """One registry entry: `python benchmarks/<script> *args`; `{tmp}` in an argument becomes a
    scratch folder of the run (for JSON outputs nobody needs afterwards)."""

    name: str
    script: str
    what: str
    args: tuple[str, ...] = ("--quick", "--markdown")
    timeout_s: float = 300.0


REGISTRY: tuple[Benchmark, ...] = (
    Benchmark("generation", "bench_generation.py",
              "WHP at inference and side by side vs plain generate, vs a no-cache WHP"),
    Benchmark("threads", "bench_threads.py",
              "thread policy per stream / per pool under an artificial competing load"),
    Benchmark("bf16", "bench_bf16.py",
              "bf16 vs fp32: speed and effect on labels, familiarity, perplexity"),
    Benchmark("probability_scoring", "bench_probability_scoring.py",
              "batched token-probability scoring vs one prompt at a time (demo probes)",
              ("--quick", "--markdown", "--out", "{tmp}/probability_scoring.json")),
    Benchmark("side_by_side", "bench_side_by_side.py",
              "side-by-side streaming vs the two models one after the other, 64 tokens",
              ("--quick", "--markdown", "--out", "{tmp}/side_by_side.json")),
    Benchmark("erase_deletion", "erase_deletion.py",
              "ERASE deletion vs a full Q-k-means recompute, n = 1k and 10k"),
    Benchmark("shared_base", "bench_shared_base.py",
              "resident memory of the two sides: two full models vs one base + LoRA adapter",
              ("--quick", "--markdown", "--out", "{tmp}/shared_base.json")),
    Benchmark("cold_start", "bench_cold_start.py",
              "time to the first page: models loaded before serving (older commit) vs after",
              ("--quick", "--markdown", "--out", "{tmp}/cold_start.json"), timeout_s=400.0),
)

# Scripts under benchmarks/ that are not run here, and why (shown by --list and in results.md).
LEFT_OUT = {
    "label_quality.py": "needs a reinforced model (--reinforced DIR), which the demo assets lack",
    "compare_methods.py": "needs trained unlearned models (runs/*/final) to compare",
    "demo_knowledge.py": "what the models know, not speed; several minutes per model",
    "erase_accuracy.py": "an accuracy study: one `unlearn erase evaluate` per task and k",
    "rule2_fix.py": "a one-off comparison with an older tree",
    "stress.py": "launches the app and 60 clients; minutes, and it loads the whole machine",
}


@dataclass
class Result:
    name: str
    status: str  # "ok", "failed", "timeout", "missing"
    seconds: float = 0.0
    output: str = ""
    error: str = ""
    command: str = ""


# ---------------------------------------------------------------- machine

def matmul_peak(threads: int, n: int = 1024, min_seconds: float = 1.0) -> float:
    """Best fp32 GFLOP/s of an `n x n` matmul on `threads` torch threads (warm-up excluded)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up: kernels, page faults
        best, spent, runs = float("inf"), 0.0, 0
        while spent < min_seconds or runs < 3:
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            took = time.perf_counter() - start
            best, spent, runs = min(best, took), spent + took, runs + 1
        return 2 * n ** 3 / best / 1e9
    finally:
        torch.set_num_threads(before)


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 1, "system": platform.platform(terse=True),
            "python": platform.python_version(), "torch": torch.__version__,
            "load": _load()}


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


# ---------------------------------------------------------------- running

def run_one(bench: Benchmark, scratch: Path, folder: Path = HERE,
            timeout_s: float | None = None) -> Result:
    """Run one benchmark script as its own process and collect its markdown."""
    script = folder / bench.script
    args = [a.replace("{tmp}", str(scratch)) for a in bench.args]
    command = shlex.join(["python", f"benchmarks/{bench.script}", *bench.args])
    if not script.is_file():
        return Result(bench.name, "missing", command=command,
                      error=f"benchmarks/{bench.script} is not in this tree")
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True,
                              timeout=timeout_s or bench.timeout_s)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Result(bench.name, "timeout", time.perf_counter() - start, out,
                      f"stopped after {timeout_s or bench.timeout_s:.0f} s", command)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return Result(bench.name, "failed", seconds, proc.stdout,
                      f"exit code {proc.returncode}\n{tail}", command)
    return Result(bench.name, "ok", seconds, proc.stdout.strip(), command=command)


def render(results: list[Result], peaks: dict[int, float], info: dict, command: str,
           started: datetime, total_s: float, budget_s: float = BUDGET_S,
           registry: tuple[Benchmark, ...] = REGISTRY) -> str:
    """The markdown of `results.md`."""
    what = {b.name: b.what for b in registry}
    within = "within" if total_s <= budget_s else "OVER"
    peak = ", ".join(f"{t} thread{'s' if t > 1 else ''} **{g:.1f} GFLOP/s**"
                     for t, g in sorted(peaks.items()))
    lines = [
        "# Benchmark results", "",
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC; the whole run took "
        f"{total_s:.0f} s ({within} the {budget_s / 60:.0f}-minute budget).", "",
        f"- Machine: {info['cpu']}, {info['cores']} logical cores, {info['system']}, "
        f"Python {info['python']}, torch {info['torch']}; load average {info['load']} at the "
        f"start, {info.get('load_end', 'n/a')} at the end.",
        f"- fp32 matmul peak (1024 x 1024, best run): {peak}.",
        "- Each benchmark measures its ratios within its own run (interleaved where it says "
        "so); times depend on the machine's load, ratios much less.", "",
        "| benchmark | status | seconds | what |", "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| [{r.name}](#{r.name.replace('_', '-')}) | {r.status} "
                     f"| {r.seconds:.0f} | {what.get(r.name, '')} |")
    for r in results:
        lines += ["", f"## {r.name.replace('_', '-')}", "", f"`{r.command}`", ""]
        if r.status == "ok":
            lines.append(r.output or "(no output)")
        elif r.status == "missing":
            lines.append(f"**missing**: {r.error}.")
        else:
            lines += [f"**{r.status}** after {r.seconds:.0f} s:", "", "```", r.error, "```"]
            if r.output.strip():
                lines += ["", "Output before it stopped:", "", "```", r.output.strip(), "```"]
    if LEFT_OUT:
        lines += ["", "## Not run here", ""]
        lines += [f"- `benchmarks/{name}`: {why}." for name, why in LEFT_OUT.items()]
    return "\n".join(lines) + "\n"


def run_all(selected: list[Benchmark], out: Path | None, command: str,
            budget_s: float = BUDGET_S, measure_peak: bool = True,
            folder: Path = HERE) -> tuple[list[Result], str]:
    """Peak, then every benchmark in `selected`; writes `out` atomically when given."""
    from unlearn.runtime import write_text

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    info = machine_info()
    peaks = {}
    if measure_peak:
        for threads in sorted({1, info["cores"]}):
            peaks[threads] = matmul_peak(threads)
            print(f"fp32 matmul peak, {threads} thread(s): {peaks[threads]:.1f} GFLOP/s",
                  file=sys.stderr, flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as scratch:
        for i, bench in enumerate(selected, 1):
            print(f"[{i}/{len(selected)}] {bench.name} ...", file=sys.stderr, flush=True)
            result = run_one(bench, Path(scratch), folder)
            results.append(result)
            print(f"[{i}/{len(selected)}] {bench.name}: {result.status} "
                  f"({result.seconds:.1f} s)" + (f": {result.error.splitlines()[0]}"
                                                  if result.error else ""),
                  file=sys.stderr, flush=True)
    info["load_end"] = _load()
    text = render(results, peaks, info, command, started, time.perf_counter() - t0, budget_s,
                  registry=tuple(selected))
    if out is not None:
        write_text(out, text)
    return results, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the registry and exit")
    parser.add_argument("--only", action="append", metavar="NAME", default=None,
                        help="run only this benchmark (repeatable); results are printed, and "
                             "written only with --out")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default: {RESULTS.relative_to(ROOT)} for a full run)")
    args = parser.parse_args(argv)
    if args.list:
        for b in REGISTRY:
            state = "" if (HERE / b.script).is_file() else "  [missing]"
            print(f"{b.name:20} benchmarks/{b.script} {' '.join(b.args)}{state}\n"
                  f"{'':20} {b.what}")
        for name, why in LEFT_OUT.items():
            print(f"{'(not run)':20} benchmarks/{name}: {why}")
        return 0
    names = [b.name for b in REGISTRY]
    unknown = [n for n in args.only or () if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    selected = [b for b in REGISTRY if args.only is None or b.name in args.only]
    out = args.out if args.out is not None or args.only else RESULTS
    command = shlex.join(["python", "-m", "benchmarks", *(argv if argv is not None
                                                            else sys.argv[1:])])
    results, text = run_all(selected, out, command)
    if out is None:
        print(text)
    else:
        print(f"wrote {out}", file=sys.stderr)
    return 1 if any(r.status in ("failed", "timeout") for r in results) else 0
