"""`python -m unlearn build-demo`: rebuild the demo world, tokenizer, baseline and reference models.

The baseline is trained on general + neighbour + target text; the reference with the same recipe
and seed on general + neighbour only (the "never saw it" model unlearning is judged against).
`--only icl` trains the in-context demo model instead (`unlearn.demo.icl`, for ERASE) into
OUT/models/icl with the existing OUT/models/tokenizer; it is never part of the default build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearn.data import TEXT_FORMAT_FILE
from unlearn.demo.icl import ICLRecipe
from unlearn.demo.modeling import TinyLlamaConfig
from unlearn.demo.train import PretrainConfig
from unlearn.runtime import package_versions, write_json

ROOT = Path(__file__).resolve().parents[2]
MODEL_CORPORA = {"baseline": ("general", "neighbour", "target"),
                 "reference": ("general", "neighbour")}
TINY_MODEL = TinyLlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=256)
ICL_MODEL = "icl"  # trained apart: task sheets, not the corpora (unlearn.demo.icl)


@dataclass
class BuildConfig:
    """Everything `build-demo` does, resolved."""

    out: str = str(ROOT / "assets")  # writes OUT/demo/ (world) and OUT/models/ (models)
    seed: int = 0  # seed of the world generator, initialisation and data order
    vocab_size: int = 4096  # BPE vocabulary size
    models: tuple[str, ...] = ("baseline", "reference")  # which models to train
    jobs: int = 1  # models trained at once, each in its own process (same weights as jobs=1)
    skip_world: bool = False  # reuse an existing OUT/demo instead of regenerating it
    model: TinyLlamaConfig = field(default_factory=TinyLlamaConfig)
    train: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(MODEL_CORPORA)
        if unknown or not self.models:
            raise ValueError(f"models must be among {sorted(MODEL_CORPORA)}, got {self.models}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size must be >= 300, got {self.vocab_size}")


def _save_model(model, tokenizer, dest: Path) -> None:
    # pack_documents pretrains on paragraphs as <s> ... </s> documents: the unlearning stages
    # must read the target the same way (unlearn.data.TEXT_FORMATS, resolved by "auto")
    from unlearn.training import save_model_atomic

    save_model_atomic(model, tokenizer, dest, extra_json={TEXT_FORMAT_FILE: {
        "text_format": "paragraphs",
        "why": "pretrained by unlearn.demo.train.pack_documents: each blank-line-separated "
               "paragraph as one <s> ... </s> document, never a newline token"}})


def _train_one(name: str, schedule, cfg: BuildConfig, tok_dir: str, models_dir: str,
               position: int, progress: bool, parent: int | None = None) -> tuple[dict, float]:
    """Train and save one demo model (in this process or a worker); returns (summary, seconds).

    A worker gets its `parent`'s pid and gives up (nothing saved) when the parent is gone, so
    an interrupted build leaves no orphan training processes behind.
    """
    from unlearn.runtime import Cancelled

    def orphaned() -> bool:
        return parent is not None and os.getppid() != parent

    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import build_model
    from unlearn.demo.train import pretrain

    t = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    model = build_model(cfg.model, tokenizer, seed=cfg.seed)
    bar = tqdm(desc=f"train {name}", unit="step", disable=not progress, file=sys.stderr,
               position=position)

    def on_progress(info: dict) -> None:
        bar.total = info["total"]
        bar.set_postfix(loss=f"{info['loss']:.3f}")
        bar.update(1)

    summary = pretrain(model, schedule, cfg.train, on_progress=on_progress, should_stop=orphaned)
    bar.close()
    if orphaned():
        raise Cancelled(f"build-demo was stopped: {name} not saved")
    dest = Path(models_dir) / name
    _save_model(model, tokenizer, dest)
    summary["corpora"] = list(MODEL_CORPORA[name])
    summary["parameters"] = sum(p.numel() for p in model.parameters())
    summary["sha256"] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                         for f in sorted(dest.glob("*.safetensors"))}
    return summary, round(time.perf_counter() - t, 2)


def _previous_manifest(path: Path, cfg: BuildConfig) -> dict:
    """The manifest of an earlier `--only` build with the same config, to merge into."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text(encoding="utf-8"))
    ignore = {"models": None, "skip_world": None}
    now = json.loads(json.dumps(asdict(cfg)))
    return old if {**old.get("config", {}), **ignore} == {**now, **ignore} else {}


def build(cfg: BuildConfig, progress: bool = True) -> dict:
    """Run the whole build; returns the manifest (also written to OUT/models/manifest.json)."""
    from transformers import AutoTokenizer

    from unlearn.demo.generate import generate_world
    from unlearn.demo.tokenizer import train_bpe_tokenizer
    from unlearn.demo.train import (
        counterfactual_schedules,
        pack_documents,
        repeat_documents,
        split_documents,
    )

    out = Path(cfg.out)
    world_dir, models_dir = out / "demo", out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = start = time.perf_counter()
    world = None
    if not cfg.skip_world:
        world = generate_world(world_dir, seed=cfg.seed)
    timings["world"] = round(time.perf_counter() - t, 2)
    corpora = {name: (world_dir / f"{name}.txt").read_text(encoding="utf-8")
               for name in ("general", "neighbour", "target")}

    t = time.perf_counter()
    tok_dir = models_dir / "tokenizer"
    train_bpe_tokenizer(corpora.values(), vocab_size=cfg.vocab_size, out_dir=tok_dir)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    timings["tokenizer"] = round(time.perf_counter() - t, 2)

    general_blocks = pack_documents(split_documents(corpora["general"]), tokenizer,
                                    cfg.train.seq_len)

    repeats = {"target": 1.0, "neighbour": cfg.train.neighbour_repeats}
    saga_blocks = {name: pack_documents(
        [d for c in MODEL_CORPORA[name] if c != "general"
         for d in repeat_documents(split_documents(corpora[c]), repeats[c], cfg.seed)],
        tokenizer, cfg.train.seq_len) for name in MODEL_CORPORA}
    schedules = counterfactual_schedules(saga_blocks, general_blocks, cfg.train.epochs,
                                         cfg.train.general_passes, cfg.seed)
    results: dict[str, dict] = {}
    jobs = min(cfg.jobs, len(cfg.models))
    if jobs == 1:
        for i, name in enumerate(cfg.models):
            results[name], timings[f"train_{name}"] = _train_one(
                name, schedules[name], cfg, str(tok_dir), str(models_dir), i, progress)
    else:  # one process per model; each pins its own thread count, so weights match jobs=1
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_train_one, name, schedules[name], cfg, str(tok_dir),
                                         str(models_dir), i, progress, os.getpid())
                       for i, name in enumerate(cfg.models)}
            for name, future in futures.items():
                results[name], timings[f"train_{name}"] = future.result()

    previous = _previous_manifest(models_dir / "manifest.json", cfg)
    results = {**previous.get("models", {}), **results}
    timings = {**previous.get("timings_seconds", {}), **timings,
               "wall": round(time.perf_counter() - start, 2)}
    manifest = {"seed": cfg.seed, "config": asdict(cfg), "versions": package_versions(),
                "timings_seconds": timings, "world": world, "models": results,
                "tokens": {c: len(tokenizer(corpora[c])["input_ids"]) for c in corpora},
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(models_dir / "manifest.json", manifest, indent=2, sort_keys=False)
    return manifest


def build_icl(out: str | Path, recipe: ICLRecipe, seed: int = 0, progress: bool = True) -> dict:
    """Train the in-context demo model into OUT/models/icl with OUT/models/tokenizer; the demo
    tasks (OUT/demo/tasks) are written first if missing. Its manifest (recipe, steps, time, probe)
    goes to OUT/models/icl/manifest.json; returns it."""
    from tqdm.auto import tqdm

    from unlearn.demo.icl import train
    from unlearn.demo.tasks import write_tasks

    out = Path(out)
    tokenizer = out / "models" / "tokenizer"
    if not (tokenizer / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer} has no tokenizer.json: build the tokenizer first "
                                "(python -m unlearn build-demo)")
    tasks = out / "demo" / "tasks"
    if not tasks.is_dir():
        write_tasks(tasks, seed=seed)
    bar = tqdm(desc=f"train {ICL_MODEL}", unit="step", disable=not progress, file=sys.stderr,
               total=recipe.max_steps)

    def on_progress(info) -> None:
        bar.set_postfix(loss=f"{info.loss:.3f}")
        bar.update(1)

    t = time.perf_counter()
    manifest = train(out / "models" / ICL_MODEL, tasks, tokenizer, recipe, on_progress)
    bar.close()
    manifest["seconds"] = round(time.perf_counter() - t, 2)
    write_json(out / "models" / ICL_MODEL / "manifest.json", manifest, indent=2, sort_keys=False)
    return manifest


def parse_args(argv: list[str] | None) -> tuple[BuildConfig | None, ICLRecipe | None, str]:
    """The corpus-model build (None when only `icl` was asked for), the icl recipe (None
    unless `--only icl`) and the output root."""
    p = argparse.ArgumentParser(prog="python -m unlearn build-demo", description=__doc__)
    p.add_argument("--out", default=str(ROOT / "assets"), help="output root (default: assets/)")
    p.add_argument("--seed", type=int, default=0, help="seed for world, init and data order")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs,
                   help="passes over the saga corpora")
    p.add_argument("--general-passes", type=float, default=PretrainConfig.general_passes,
                   help="passes over the general corpus, spread over the epochs")
    p.add_argument("--neighbour-repeats", type=float,
                   default=PretrainConfig.neighbour_repeats,
                   help="copies of the neighbour saga's stories in each epoch (both models)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per model; the weights depend on it (float sums are "
                        "split by thread), not on --jobs")
    p.add_argument("--jobs", type=int, default=2,
                   help="models trained at once, one process each (default 2: baseline and "
                        "reference side by side, one thread each)")
    p.add_argument("--max-steps", type=int, default=None, help="cap optimizer steps per model")
    p.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size)
    p.add_argument("--seq-len", type=int, default=PretrainConfig.seq_len)
    p.add_argument("--lr", type=float, default=PretrainConfig.lr)
    p.add_argument("--only", choices=sorted([*MODEL_CORPORA, ICL_MODEL]), action="append",
                   help="train only this model (repeatable); icl: the in-context demo model")
    p.add_argument("--icl-cpu-minutes", type=float, default=ICLRecipe.cpu_minutes,
                   help="CPU-time cap of the icl training (steps: --max-steps)")
    p.add_argument("--icl-wall-minutes", type=float, default=None,
                   help="wall-clock cap of the icl training as well (default: none)")
    p.add_argument("--skip-world", action="store_true", help="reuse OUT/demo as it is")
    p.add_argument("--tiny", action="store_true",
                   help="tiny model and vocab (a smoke test of the whole command)")
    args = p.parse_args(argv)
    try:
        train = PretrainConfig(epochs=args.epochs, general_passes=args.general_passes,
                               neighbour_repeats=args.neighbour_repeats,
                               threads=args.threads, seq_len=args.seq_len,
                               batch_size=args.batch_size, lr=args.lr,
                               max_steps=args.max_steps, seed=args.seed,
                               warmup_steps=2 if args.tiny else PretrainConfig.warmup_steps)
        models = tuple(m for m in args.only or MODEL_CORPORA if m != ICL_MODEL)
        icl = None
        if ICL_MODEL in (args.only or ()):
            tiny = {"hidden_size": 32, "intermediate_size": 64, "heads": 2, "eval_every": 1,
                    "eval_queries": 4} if args.tiny else {}
            icl = ICLRecipe(**{"seed": args.seed, "cpu_minutes": args.icl_cpu_minutes,
                               "wall_minutes": args.icl_wall_minutes,
                               "threads": args.threads or 1, **tiny,
                               **({"max_steps": args.max_steps} if args.max_steps else {})})
        cfg = None if not models else BuildConfig(
            out=args.out, seed=args.seed, vocab_size=512 if args.tiny else args.vocab_size,
            models=models, skip_world=args.skip_world, jobs=args.jobs,
            model=TINY_MODEL if args.tiny else TinyLlamaConfig(), train=train)
        return cfg, icl, args.out
    except ValueError as exc:
        p.error(str(exc))
        raise  # unreachable: p.error exits


def main(argv: list[str] | None = None) -> int:
    cfg, icl, out = parse_args(argv)
    if cfg is not None:
        if cfg.skip_world and not (Path(cfg.out) / "demo" / "target.txt").exists():
            print(f"error: --skip-world but {cfg.out}/demo/target.txt does not exist",
                  file=sys.stderr)
            return 2
        manifest = build(cfg)
        print(json.dumps({"timings_seconds": manifest["timings_seconds"],
                          "models": {k: {"final_loss": v["final_loss"], "steps": v["steps"]}
                                     for k, v in manifest["models"].items()}}, indent=2))
    if icl is not None:
        try:
            manifest = build_icl(out, icl, seed=icl.seed)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({ICL_MODEL: {k: manifest[k] for k in
                                      ("steps", "tokens", "minutes", "cpu_minutes",
                                       "final_probe")}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
