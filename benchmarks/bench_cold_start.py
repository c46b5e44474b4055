"""Time to first page of `python app.py`: models loaded before serving vs in the background.

    python benchmarks/bench_cold_start.py [--runs 3] [--before COMMIT] [--markdown] [--out FILE]

"before" is the app as of `--before` (default: the commit before background loading, taken with
`git archive` into a temporary folder, with this checkout's `assets/` linked in); "after" is this
checkout. Runs alternate (before, after, before, after ...), each a fresh `python app.py` on the
demo preset and a free port; the time is from the process start to the first HTTP 200 on `/`.
For "after" the time until its log says the models are loaded is recorded too.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ui.store import READY_LOG  # noqa: E402
from unlearn.runtime import write_text  # noqa: E402

BEFORE = "10f0e84"  # main before issue 16's background loading
TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkout(commit: str, into: Path) -> Path:
    """The app's code at `commit` (git archive, read-only on the repository) + a link to assets."""
    data = subprocess.run(["git", "archive", commit, "app.py", "ui", "unlearn", "audits"],
                          cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    (into / "assets").symlink_to(ROOT / "assets")
    return into


def one_run(folder: Path, runs_dir: Path) -> dict:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir",
                             str(runs_dir)], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ready: dict[str, float] = {}

    def watch() -> None:
        for line in proc.stderr:
            if READY_LOG in line and "models" not in ready:
                ready["models"] = time.monotonic() - start

    threading.Thread(target=watch, daemon=True).start()
    page = None
    try:
        while time.monotonic() - start < TIMEOUT and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    if r.status == 200:
                        page = time.monotonic() - start
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        if page is not None:  # let "after" report when its models are ready
            while "models" not in ready and time.monotonic() - start < TIMEOUT \
                    and proc.poll() is None and folder == ROOT:
                time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if page is None:
        raise RuntimeError(f"{folder}: no page within {TIMEOUT:.0f} s (exit {proc.returncode})")
    return {"first_page_s": page, "models_ready_s": ready.get("models")}


def run_bench(runs: int, commit: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-cold-start-"))
    try:
        old = checkout(commit, work / "before")
        rows: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(runs):
            rows["before"].append(one_run(old, work / "runs"))
            rows["after"].append(one_run(ROOT, work / "runs"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(r["first_page_s"] for r in v) for k, v in rows.items()}
    ready = [r["models_ready_s"] for r in rows["after"] if r["models_ready_s"] is not None]
    return {"runs": runs, "before_commit": commit, "first_page_s": med,
            "all": rows, "speedup": med["before"] / med["after"],
            "after_models_ready_s": statistics.median(ready) if ready else None}


def markdown(r: dict) -> str:
    ready = r["after_models_ready_s"]
    return "\n".join([
        f"**Time to first page** (demo preset, median of {r['runs']} alternating runs)", "",
        "| app | first HTTP 200 on / |", "|---|---|",
        f"| before ({r['before_commit']}: models loaded before serving) | "
        f"{r['first_page_s']['before']:.1f} s |",
        f"| after (models load in the background) | {r['first_page_s']['after']:.1f} s"
        + (f"; models ready at {ready:.1f} s |" if ready is not None else " |"), "",
        f"Speed-up of the first page: {r['speedup']:.2f}x.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help=f"commit to compare (default {BEFORE})")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="one process per mode (the python -m benchmarks setting)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_cold_start.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    result = run_bench(args.runs, args.before)
    write_text(args.out, json.dumps(result, indent=1) + "\n")  # atomic, folder made
    print(markdown(result) if args.markdown else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
