"""Smoke test of the published pair on a GPU: load, stream side by side, one HP probe set.

    python scripts/gpu_smoke.py                          # the llama2-whp preset on cuda
    python scripts/gpu_smoke.py --quantization none      # fp16 both (needs ~27 GB)
    python scripts/gpu_smoke.py --tiny --device cpu      # tiny stand-ins (what CI can run)

Prints load times, time to first token and tokens/s per side, the HP token-probability
familiarity of both models, and GPU memory (allocated / reserved / total) after each step.
Models, device, dtype and quantization are resolved as `python app.py --preset llama2-whp`
resolves them (same flags, same WHP_* variables).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def gpu_memory(device: str) -> str:
    """`allocated / reserved / total GB` of `device` from the CUDA runtime ("" on the CPU)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return ""
    gb = 1024 ** 3
    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory / gb
    return (f"GPU memory: {torch.cuda.memory_allocated(index) / gb:.1f} allocated / "
            f"{torch.cuda.memory_reserved(index) / gb:.1f} reserved / {total:.1f} GB total")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu_smoke.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true",
                   help="tiny random Llama-2-shaped stand-ins built on the fly")
    p.add_argument("--prompt", default="Who are Harry Potter's two best friends?")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--probes", default=str(ROOT / "assets" / "hp" / "probes" /
                                           "target_probability.jsonl"))
    return p


def main(argv: list[str] | None = None) -> int:
    from audits.probability import probability_familiarity
    from audits.probes import ProbabilityProbe, load_probes
    from ui.config import build_parser as app_parser
    from ui.config import parse_config
    from ui.streaming import GenerationSettings, StreamStats, stream_side_by_side
    from unlearn.models import ModelLoadError, load_model

    own, rest = build_parser().parse_known_args(argv)
    app_args = ["--preset", "llama2-whp", *rest]
    if own.tiny:
        from ui.testing import write_tiny_llama2_pair

        tmp = tempfile.TemporaryDirectory(prefix="smoke-")  # removed when main returns
        original, unlearned = write_tiny_llama2_pair(Path(tmp.name))
        app_args += ["--original", str(original), "--unlearned", str(unlearned)]
    app_parser().parse_args(app_args)  # unknown flags fail here, with the app's usage
    config = parse_config(app_args)
    for notice in config.notices:
        print(f"notice: {notice}")
    print(f"device {config.device}, dtype {config.dtype}, quantization {config.quantization}, "
          f"chat template {config.chat_template}")
    models = {}
    for side in ("original", "unlearned"):
        name = getattr(config, side)
        t0 = time.perf_counter()
        try:
            models[side] = load_model(name, **config.load_kwargs())
        except ModelLoadError as exc:
            print(f"{side}: {exc}", file=sys.stderr)
            return 1
        print(f"{side}: loaded {name} in {time.perf_counter() - t0:.1f} s. "
              f"{gpu_memory(config.device)}")

    settings = GenerationSettings(max_new_tokens=own.max_new_tokens, temperature=0.0,
                                  mode="chat", chat_template=config.chat_template)
    stats = StreamStats()
    t0 = time.perf_counter()
    *_, texts = stream_side_by_side(list(models.values()), own.prompt, settings,
                                    threading.Event(), stats)
    print(f"side by side, {own.prompt!r} (greedy, chat):")
    for i, side in enumerate(models):
        first, end, n = stats.first_token_s[i], stats.end_s[i], stats.tokens[i]
        rate = n / (end - first) if first is not None and end and end > first else 0.0
        print(f"  {side}: first token {first or 0:.2f} s, {n} tokens in {end or 0:.2f} s "
              f"({rate:.1f} tokens/s){'; error ' + stats.errors[i] if stats.errors[i] else ''}")
        print(f"    {texts[i].strip()[:300]!r}")
    print(f"  wall {time.perf_counter() - t0:.2f} s. {gpu_memory(config.device)}")

    probes = load_probes(own.probes, ProbabilityProbe)
    print(f"{Path(own.probes).name} ({len(probes)} probes):")
    for side, (model, tok) in models.items():
        t0 = time.perf_counter()
        result = probability_familiarity(model, tok, probes)
        top1 = sum(item.rank == 1 for item in result.items) / max(len(result.items), 1)
        print(f"  {side}: mean answer probability {result.familiarity:.3f}, top-1 {top1:.3f} "
              f"({time.perf_counter() - t0:.1f} s)")
    print(gpu_memory(config.device) or "no CUDA device: GPU memory not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
