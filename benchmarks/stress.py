"""Stress the launched app with concurrent streaming clients (loopback only; stops by itself).

Starts `python app.py` on 127.0.0.1 (the demo models when built, else a tiny random model) with a
bounded queue, then for each level (default 10, 30, 60 concurrent clients) sends `--requests`
streaming `/generate` calls spread over the clients (each a `gradio_client.Client`, i.e. one
browser session, reused for its calls), each client one call at a time. Every
request ends as one of:
- served: the stream finished ("Done ..." status);
- busy: the server answered "queue is full, try again" (the bounded queue);
- failed: anything else (client timeout, connection error, error message).
Prints and writes (JSON) per level: the counts, p50/p95 latency of served requests, and the
app's RSS after warm-up and after each level. Target: 0 failed; RSS growth < 10% after warm-up.

    python benchmarks/stress.py [--levels 10,30,60] [--requests 200] [--queue-size 16]
                                [--tokens 8] [--timeout 120] [--out FILE]

Not part of CI (minutes of CPU). Only ever binds and connects to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui.testing import (  # noqa: E402
    demo_models_built,
    free_port,
    launch_app,
    stop_app,
    write_tiny_demo,
)

PROMPTS = ["The old teacher opened the door and", "After lunch the children walked to",
           "In the castle library, the young student found", "Mira walked to the"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tiny_model(folder: Path) -> Path:
    """A random 2-layer Llama with a small trained tokenizer (when the demo models are absent)."""
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import TinyLlamaConfig, build_model
    from unlearn.demo.tokenizer import train_bpe_tokenizer

    text = ["Anna walked to the city school with her dog Max.",
            "Mira Thistlewood's owl was called Pip."] * 50
    train_bpe_tokenizer(text, vocab_size=400, out_dir=folder)
    tok = AutoTokenizer.from_pretrained(folder)
    cfg = TinyLlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=2,
                          max_position_embeddings=512)
    build_model(cfg, tok, seed=0).save_pretrained(folder)
    return folder


_LOCAL = threading.local()


def session_client(url: str, timeout: float):
    """This worker thread's own client (one browser session per simulated visitor)."""
    from gradio_client import Client

    if getattr(_LOCAL, "url", None) != url:
        _LOCAL.client = Client(url, verbose=False, httpx_kwargs={"timeout": timeout})
        _LOCAL.url = url
    return _LOCAL.client


def one_request(url: str, prompt: str, tokens: int, timeout: float) -> tuple[str, float, str]:
    """`(outcome, seconds, detail)` of one streaming /generate call of this thread's client."""
    from gradio_client.exceptions import AppError

    t0 = time.perf_counter()
    try:
        client = session_client(url, timeout)
        job = client.submit(prompt, "completion", tokens, 0.8, 0.95, 0, 1.0, 0, "auto", "",
                            api_name="/generate")
        result = job.result(timeout=timeout)
        status = str(result[2])
        outcome = "served" if status.startswith("Done") else "failed"
        return outcome, time.perf_counter() - t0, "" if outcome == "served" else status[:200]
    except AppError as exc:
        return "failed", time.perf_counter() - t0, f"AppError: {exc.message}"[:200]
    except Exception as exc:  # noqa: BLE001 - classified
        text = f"{type(exc).__name__}: {exc}"
        outcome = "busy" if "queue is full" in text.lower() else "failed"
        return outcome, time.perf_counter() - t0, text[:200]


def run_level(url: str, clients: int, requests: int, tokens: int, timeout: float) -> dict:
    counts = {"served": 0, "busy": 0, "failed": 0}
    latencies: list[float] = []
    details: list[str] = []
    lock = threading.Lock()
    t0 = time.perf_counter()

    def work(i: int) -> None:
        outcome, seconds, detail = one_request(url, PROMPTS[i % len(PROMPTS)], tokens, timeout)
        with lock:
            counts[outcome] += 1
            if outcome == "served":
                latencies.append(seconds)
            elif outcome == "failed" and len(details) < 5:
                details.append(detail)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(work, range(requests)))
    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    return {"clients": clients, "requests": requests, **counts,
            "p50_s": round(statistics.median(latencies), 2) if latencies else None,
            "p95_s": round(q[18], 2) if latencies else None,
            "wall_s": round(time.perf_counter() - t0, 1), "failures": details}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--levels", default="10,30,60")
    p.add_argument("--requests", type=int, default=200, help="requests per level")
    p.add_argument("--queue-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--timeout", type=float, default=120.0, help="client timeout per request")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    root = Path(tempfile.mkdtemp(prefix="whp-stress-"))
    app_args = ["--runs-dir", str(root / "runs"), "--host", "127.0.0.1", "--public", "off",
                "--queue-size", str(args.queue_size)]
    if not demo_models_built():
        model = tiny_model(root / "model")
        app_args += ["--original", str(model), "--unlearned", str(model), "--reference", "",
                     "--demo-dir", str(write_tiny_demo(root / "demo"))]
    port = free_port()
    proc = launch_app(app_args, port, root / "app.log")
    url = f"http://127.0.0.1:{port}/"
    try:
        warm = run_level(url, 2, args.warmup, args.tokens, args.timeout)
        rss_warm = rss_mb(proc.pid)
        print(f"warm-up: {warm['served']}/{args.warmup} served; RSS {rss_warm:.0f} MB",
              flush=True)
        results = []
        for clients in levels:
            res = run_level(url, clients, args.requests, args.tokens, args.timeout)
            res["rss_after_mb"] = round(rss_mb(proc.pid), 1)
            results.append(res)
            print(f"{clients:3d} clients: {res['served']} served, {res['busy']} busy, "
                  f"{res['failed']} failed of {res['requests']}; p50 {res['p50_s']} s, "
                  f"p95 {res['p95_s']} s, wall {res['wall_s']} s; RSS {res['rss_after_mb']} MB"
                  + (f"; failures: {res['failures']}" if res["failures"] else ""), flush=True)
        growth = (results[-1]["rss_after_mb"] - rss_warm) / rss_warm * 100
        print(f"RSS after warm-up {rss_warm:.0f} MB, after all levels "
              f"{results[-1]['rss_after_mb']:.0f} MB ({growth:+.1f}%)")
        report = {"machine": platform.platform(), "cpus": __import__("os").cpu_count(),
                  "models": "demo" if demo_models_built() else "tiny random",
                  "queue_size": args.queue_size, "tokens": args.tokens,
                  "rss_warm_mb": round(rss_warm, 1), "rss_growth_pct": round(growth, 1),
                  "levels": results}
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
        failed = sum(r["failed"] for r in results)
        return 0 if failed == 0 else 1
    finally:
        stop_app(proc)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
