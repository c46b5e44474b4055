"""Side-by-side streaming vs generating the two models one after the other.

Measures, for the same prompts and settings (greedy, fixed length):
- time to first token of each pane (sequential: the right pane waits for the whole left run);
- wall time and tokens/s of the pair.
Prints the ratios and writes JSON. Uses the demo models when built, else two tiny random models.

    python benchmarks/bench_side_by_side.py [--tokens 64] [--repeats 3] [--out FILE]
        [--quick] [--markdown]

`--quick`: 1 repeat of the 3 prompts per mode instead of 3 (what `python -m benchmarks` runs);
`--markdown`: the table and ratios as markdown (for `benchmarks/results.md`).
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
from pathlib import Path

import torch
from transformers.generation.streamers import BaseStreamer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui.streaming import (  # noqa: E402
    GenerationSettings,
    StreamStats,
    prompt_inputs,
    stream_side_by_side,
)
from unlearn.models import load_model  # noqa: E402

PROMPTS = ["The old teacher opened the door and", "After lunch the children walked to",
           "In the castle library, the young student found"]


class _FirstToken(BaseStreamer):
    """Records when generate emits its first new token."""

    def __init__(self, t0: float):
        self.t0, self.first, self.prompt_seen = t0, None, False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        if self.first is None:
            self.first = time.perf_counter() - self.t0

    def end(self):
        pass


def models_to_compare() -> tuple[str, list[tuple]]:
    demo = ROOT / "assets" / "models"
    right = next((demo / n for n in ("unlearned", "reference")
                  if (demo / n / "config.json").is_file()), None)
    if (demo / "baseline" / "config.json").is_file() and right is not None:
        return f"demo baseline vs {right.name}", [load_model(str(demo / "baseline")),
                                                  load_model(str(right))]
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import TinyLlamaConfig, build_model
    from unlearn.demo.tokenizer import train_bpe_tokenizer

    tmp = Path(tempfile.mkdtemp(prefix="bench-sbs-"))
    train_bpe_tokenizer(PROMPTS * 20, vocab_size=300, out_dir=tmp / "tok")
    tok = AutoTokenizer.from_pretrained(tmp / "tok")
    pair = []
    for seed in (0, 1):
        model = build_model(TinyLlamaConfig(), tok, seed=seed)  # the demo models' size
        model.save_pretrained(tmp / f"m{seed}")
        tok.save_pretrained(tmp / f"m{seed}")
        pair.append(load_model(str(tmp / f"m{seed}")))
    return "random models of the demo size (demo models not built)", pair


def run_parallel(pair, prompt: str, settings: GenerationSettings) -> dict:
    stats = StreamStats()
    t0 = time.perf_counter()
    for _ in stream_side_by_side(pair, prompt, settings, threading.Event(), stats):
        pass
    wall = time.perf_counter() - t0
    return {"ttft": list(stats.first_token_s), "wall": wall, "tokens": sum(stats.tokens)}


def run_sequential(pair, prompt: str, settings: GenerationSettings) -> dict:
    """Both generate calls one after the other, in one worker thread.

    A worker thread like the side-by-side generate threads: torch's intra-op (OpenMP) pool
    behaves very differently in the main thread on a busy 2-core machine, which would
    exaggerate the side-by-side advantage several-fold.
    """
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(_sequential(pair, prompt, settings)))
    worker.start()
    worker.join()
    return result


def _sequential(pair, prompt: str, settings: GenerationSettings) -> dict:
    t0 = time.perf_counter()
    ttft, tokens = [], 0
    for model, tok in pair:
        inputs = prompt_inputs(tok, prompt, settings, model.device)
        streamer = _FirstToken(t0)
        with torch.inference_mode():
            out = model.generate(**inputs, **settings.generate_kwargs(), streamer=streamer,
                                 pad_token_id=tok.pad_token_id)
        ttft.append(streamer.first)
        tokens += out.shape[1] - inputs["input_ids"].shape[1]
    return {"ttft": ttft, "wall": time.perf_counter() - t0, "tokens": tokens}


def summarise(runs: list[dict]) -> dict:
    med = statistics.median
    return {"ttft_left_s": med(r["ttft"][0] for r in runs),
            "ttft_right_s": med(r["ttft"][1] for r in runs),
            "wall_s": med(r["wall"] for r in runs),
            "tokens_per_s": med(r["tokens"] / r["wall"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per pane")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per prompt and mode (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="1 repeat unless --repeats")
    ap.add_argument("--markdown", action="store_true", help="print markdown")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0 = torch's default)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "side_by_side.json"))
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or args.tokens < 1:
        ap.error("--repeats and --tokens must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    what, pair = models_to_compare()
    settings = GenerationSettings(max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                                  temperature=0)
    run_parallel(pair, PROMPTS[0], settings)  # warm-up
    run_sequential(pair, PROMPTS[0], settings)
    par, seq = [], []
    for _ in range(args.repeats):
        for prompt in PROMPTS:  # interleave so that machine load hits both modes alike
            par.append(run_parallel(pair, prompt, settings))
            seq.append(run_sequential(pair, prompt, settings))
    p, s = summarise(par), summarise(seq)
    ratios = {"wall_sequential_over_side_by_side": s["wall_s"] / p["wall_s"],
              "tokens_per_s_side_by_side_over_sequential": p["tokens_per_s"] / s["tokens_per_s"],
              "ttft_right_sequential_over_side_by_side": s["ttft_right_s"] / p["ttft_right_s"]}
    result = {"models": what, "new_tokens_per_pane": args.tokens, "runs": len(par),
              "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
              "torch": torch.__version__, "side_by_side": p, "sequential": s, "ratios": ratios}
    if args.markdown:
        print(f"{what}; {args.tokens} tokens per pane, {len(par)} runs per mode (medians), "
              f"{torch.get_num_threads()} torch threads\n\n"
              "| mode | TTFT left | TTFT right | wall | tok/s |\n|---|---|---|---|---|")
        for name, r in (("side by side", p), ("sequential", s)):
            print(f"| {name} | {r['ttft_left_s']:.3f} s | {r['ttft_right_s']:.3f} s "
                  f"| {r['wall_s']:.2f} s | {r['tokens_per_s']:.1f} |")
        print()
        for key, value in ratios.items():
            print(f"- {key}: **{value:.2f}x**")
    else:
        print(f"models: {what}; {args.tokens} tokens per pane, {len(par)} runs per mode "
              "(medians)")
        print(f"{'':14}{'TTFT left':>11}{'TTFT right':>12}{'wall':>9}{'tok/s':>9}")
        for name, r in (("side by side", p), ("sequential", s)):
            print(f"{name:14}{r['ttft_left_s']:>10.3f}s{r['ttft_right_s']:>11.3f}s"
                  f"{r['wall_s']:>8.2f}s{r['tokens_per_s']:>9.1f}")
        for key, value in ratios.items():
            print(f"{key}: {value:.2f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr if args.markdown else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
