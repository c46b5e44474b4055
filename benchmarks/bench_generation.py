"""Generation speed: WHP at inference vs plain `generate` vs a no-cache MUSE-style loop, and the
two side-by-side panes vs one model alone (demo models, greedy, fixed length, ratios of one run).

    python benchmarks/bench_generation.py [--quick] [--markdown] [--tokens 64] [--pane-tokens 64]
                                          [--repeats 5] [--profile] [--out FILE]

`--quick`: 2 runs per case and 24 new tokens for the WHP / generate / no-cache comparisons (the
no-cache loop on the 250-token prompt is most of the time); the panes keep 64 tokens.

* plain: `model.generate` of the baseline (greedy, KV cache).
* WHP: `WHPInferenceModel(baseline, second, alpha=5, space="logit").generate` (KV caches of both).
* no-cache: the MUSE benchmark's way (its `WHPModelForCausalLM`): every step a full forward of both
  models over the whole sequence, Eq. 1 on the raw logits of every position, argmax of the last.
* side by side: `ui.streaming.stream_side_by_side` with both models vs with the baseline alone.
Each step of a repeat runs the compared commands back to back (A, B, A, B, ...), so machine load
hits them alike; a ratio is the median of the per-pair ratios. The second model is the demo's
unlearned model (a stand-in for a reinforced model of the same architecture: the cost is the same).
Prompts are cut to exactly 8 and 250 tokens. Also checks that the outputs agree (same tokens).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ui.streaming import GenerationSettings, StreamStats, stream_side_by_side  # noqa: E402
from unlearn.inference_whp import WHPInferenceModel, whp_logits  # noqa: E402
from unlearn.models import load_model  # noqa: E402
from unlearn.runtime import (  # noqa: E402
    stream_threads,
    torch_threads,
    write_json,  # noqa: E402
)

ALPHA = 5.0
TEXT = ("The old teacher opened the door and looked at the children in the castle library. "
        "After lunch the students walked to the lake, where the young wizard found a letter "
        "from his friend. In the morning the owls brought news of the match, and everyone in "
        "the great hall talked about the game and the teachers who had watched it. ")
TARGETS = {"whp_over_plain": ("<=", 1.3), "nocache_over_whp": (">=", 5.0),
           "side_by_side_over_one": ("<=", 1.3)}


def prompt_ids(tok, n: int) -> torch.Tensor:
    """(1, n) ids: BOS + the demo text repeated and cut to n tokens."""
    ids = tok(TEXT * (1 + n // 40), return_tensors="pt")["input_ids"][:, :n]
    if ids.shape[1] != n:
        raise ValueError(f"the text gives {ids.shape[1]} tokens, fewer than {n}")
    return ids


def plain_generate(model, ids: torch.Tensor, n: int) -> torch.Tensor:
    with torch.inference_mode(), torch_threads(stream_threads()):
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                              min_new_tokens=n, do_sample=False,
                              pad_token_id=model.generation_config.pad_token_id)


def whp_generate(whp: WHPInferenceModel, ids: torch.Tensor, n: int) -> torch.Tensor:
    return whp.generate(ids, max_new_tokens=n, eos_token_id=[])


def nocache_generate(base, second, ids: torch.Tensor, n: int) -> torch.Tensor:
    """The MUSE benchmark's WHP decoding: both models on the whole sequence every step, Eq. 1 on
    raw logits at every position (as its forward returns them), greedy on the last."""
    with torch.inference_mode(), torch_threads(stream_threads()):
        for _ in range(n):
            logits = whp_logits(base(ids).logits, second(ids).logits, ALPHA, "logit")  # (1,T,V)
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=-1)
    return ids


def stream(pairs, prompt: str, settings: GenerationSettings) -> tuple[str, ...]:
    texts: tuple[str, ...] = ()
    for now in stream_side_by_side(pairs, prompt, settings, threading.Event(), StreamStats()):
        texts = now
    return texts


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(worker: ThreadPoolExecutor, cases: dict, repeats: int, n: int,
            ) -> tuple[dict[str, list[float]], dict]:
    """Run every case of `cases` (name -> callable of the number of new tokens) once per repeat,
    back to back, in the one worker thread (like a generate thread of the app); returns the
    times per case and each case's last output."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    outputs: dict = {}
    for fn in cases.values():  # warm-up: a few tokens are enough
        worker.submit(fn, 2).result()
    for _ in range(repeats):
        for name, fn in cases.items():
            elapsed, outputs[name] = worker.submit(timed, lambda fn=fn: fn(n)).result()
            times[name].append(elapsed)
    return times, outputs


def pair_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def verdict(key: str, value: float) -> str:
    op, bound = TARGETS[key]
    ok = value <= bound if op == "<=" else value >= bound
    return f"{op} {bound}: {'met' if ok else 'NOT met'}"


def profile_whp(whp, ids, n: int, top: int = 14) -> str:
    prof = cProfile.Profile()
    prof.enable()
    whp_generate(whp, ids, n)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 repeats, 24 new tokens outside the panes (about a minute)")
    ap.add_argument("--markdown", action="store_true", help="print the results as markdown")
    ap.add_argument("--tokens", type=int, default=None,
                    help="new tokens per WHP / generate / no-cache run (default 64, quick 24)")
    ap.add_argument("--pane-tokens", type=int, default=64, help="new tokens per pane")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of WHP decoding")
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "generation.json"))
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    models = ROOT / "assets" / "models"
    missing = [n for n in ("baseline", "unlearned") if not (models / n / "config.json").is_file()]
    if missing:
        ap.error(f"demo models missing: {missing} (python -m unlearn build-demo)")
    base, tok = load_model(str(models / "baseline"))
    second, tok2 = load_model(str(models / "unlearned"))
    whp = WHPInferenceModel(base, second, alpha=ALPHA, space="logit")
    n = args.tokens or (24 if args.quick else 64)
    if n < 1 or args.pane_tokens < 1:
        ap.error("--tokens and --pane-tokens must be >= 1")
    worker = ThreadPoolExecutor(1, thread_name_prefix="bench-generate")
    rows, checks, raw = [], [], {}
    for label, length in (("short (8 tokens)", 8), ("long (250 tokens)", 250)):
        ids = prompt_ids(tok, length)
        cases = {"plain": lambda k, ids=ids: plain_generate(base, ids, k),
                 "whp": lambda k, ids=ids: whp_generate(whp, ids, k),
                 "nocache": lambda k, ids=ids: nocache_generate(base, second, ids, k)}
        t, outs = measure(worker, cases, repeats, n)
        raw[label] = t
        rows.append(("WHP at inference / plain generate", label,
                     pair_ratio(t["whp"], t["plain"]), "whp_over_plain"))
        rows.append(("no-cache (MUSE-style) / WHP at inference", label,
                     pair_ratio(t["nocache"], t["whp"]), "nocache_over_whp"))
        same = outs["whp"].tolist() == outs["nocache"].tolist()
        checks.append(f"{label}: WHP tokens == no-cache tokens: {same}")
    prompt = TEXT.split(". ")[0]
    def panes(k: int, pairs) -> tuple[str, ...]:
        return stream(pairs, prompt, GenerationSettings(max_new_tokens=k, min_new_tokens=k,
                                                        temperature=0))

    cases = {"side_by_side": lambda k: panes(k, [(base, tok), (second, tok2)]),
             "one": lambda k: panes(k, [(base, tok)])}
    t, outs = measure(worker, cases, repeats, args.pane_tokens)
    raw["side by side"] = t
    rows.append(("side by side (2 panes) / one model alone", f"{args.pane_tokens} tokens per pane",
                 pair_ratio(t["side_by_side"], t["one"]), "side_by_side_over_one"))
    enc = tok2(prompt, return_tensors="pt")["input_ids"]
    alone = tok2.decode(plain_generate(second, enc, args.pane_tokens)[0, enc.shape[1]:],
                        skip_special_tokens=True)
    checks.append(f"side by side: unlearned pane text == its plain generate: "
                  f"{outs['side_by_side'][1] == alone and len(alone) > 0}")
    worker.shutdown()
    head = (f"{n} new tokens ({args.pane_tokens} per pane), greedy, {repeats} interleaved runs "
            f"per case, torch "
            f"{torch.__version__}, {stream_threads()} torch thread(s) per stream, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.markdown:
        print(f"### Generation ({head})\n")
        print("| comparison | prompt | ratio | target |")
        print("|---|---|---|---|")
        for what, label, value, key in rows:
            print(f"| {what} | {label} | {value:.2f}x | {verdict(key, value)} |")
        print()
        for c in checks:
            print(f"- {c}")
    else:
        print(head)
        for what, label, value, key in rows:
            print(f"{what:44} {label:20} {value:6.2f}x  {verdict(key, value)}")
        print("\n".join(checks))
    if args.profile:
        print(profile_whp(whp, prompt_ids(tok, 8), n))
    write_json(args.out, {"header": head, "ratios": [r[:3] for r in rows], "checks": checks,
                          "times_s": raw}, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
