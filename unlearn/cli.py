"""Command line of the unlearning core: `python -m unlearn {whp,reinforce,labels,finetune,...}`.

Thin: argparse -> config dataclasses -> `unlearn.pipeline` functions. Usage errors (missing
files, bad values) exit with code 2 and a one-line message, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMMANDS = ("whp", "reinforce", "labels", "finetune", "baseline", "suggest")


# ---------------------------------------------------------------- argument types

def existing_file(value: str) -> str:
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return value


def model_path(value: str) -> str:
    """A local model folder (must hold config.json) or a hub id like org/name."""
    path = Path(value).expanduser()
    if path.exists() or value.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise argparse.ArgumentTypeError(f"not a model folder (no config.json): {value}")
        return str(path)
    if value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"model folder not found: {value}")
    return value


def labels_dir(value: str) -> str:
    from unlearn.label_runner import labels_complete

    if not labels_complete(value):
        raise argparse.ArgumentTypeError(f"not a finished label dataset: {value}")
    return value


def _int_at_least(minimum: int):
    """An argparse type: an integer >= `minimum`, with a clear message otherwise."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
        return n

    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return x


# ---------------------------------------------------------------- argument groups

def _common(p: argparse.ArgumentParser, block: int = 512) -> None:
    p.add_argument("--block-size", type=positive_int, default=block, help="tokens per block")
    p.add_argument("--max-target-tokens", type=positive_int, default=None,
                   help="use only the first N tokens of the target text")
    p.add_argument("--device", default="cpu", help="cpu or cuda (never guessed)")
    p.add_argument("--seed", type=int, default=0, help="seed for every stage")


def _text_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-format", choices=("auto", "text", "paragraphs"), default="auto",
                   help="how the text becomes tokens: one stream, or blank-line-separated "
                        "paragraphs as <s>...</s> documents (auto: what the model folder's "
                        "text_format.json says, else text)")


def _label_space_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-space", choices=("logprob", "logit"), default="logprob",
                   help="Eq. 1 on log-probabilities (default) or on raw logits (the paper's "
                        "literal formula; sensitive to a per-row logit shift)")


def _finetune_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("finetune")
    g.add_argument("--steps", type=positive_int, default=150, help="optimizer steps")
    g.add_argument("--lr", type=positive_float, default=1e-5, help="peak learning rate")
    g.add_argument("--batch-size", type=positive_int, default=8, help="blocks per micro-batch")
    g.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per step")
    g.add_argument("--warmup-steps", type=non_negative_int, default=0)
    g.add_argument("--lora", action="store_true", help="train LoRA adapters (merged at the end)")
    g.add_argument("--lora-r", type=positive_int, default=16)
    g.add_argument("--lora-alpha", type=positive_int, default=32)
    g.add_argument("--quantization", choices=("none", "4bit", "8bit"), default="none",
                   help="quantized base (QLoRA; implies --lora)")
    g.add_argument("--save-every", type=non_negative_int, default=50,
                   help="checkpoint every N steps (0: only on cancel)")
    g.add_argument("--force", action="store_true",
                   help="start over in a run directory that holds a different config")
    e = p.add_argument_group("checkpoint evaluation")
    e.add_argument("--eval-probes", type=existing_file, default=None,
                   help="probability probes (JSONL prompt/answer) scored at checkpoints")
    e.add_argument("--eval-text", type=existing_file, default=None,
                   help="text whose perplexity is measured at checkpoints")
    e.add_argument("--eval-every", type=non_negative_int, default=0,
                   help="evaluate every N steps (0: before and after training only)")
    e.add_argument("--eval-text-tokens", type=positive_int, default=4096,
                   help="perplexity uses at most this many tokens of --eval-text")


def _finetune_config(args, method: str):
    from unlearn.finetune import FinetuneConfig

    lora = args.lora or args.quantization != "none"
    return FinetuneConfig(
        method=method, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
        grad_accum=args.grad_accum, block_size=args.block_size, warmup_steps=args.warmup_steps,
        lora=lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        quantization=args.quantization, save_every=args.save_every, seed=args.seed,
        device=args.device, npo_beta=getattr(args, "npo_beta", 0.1),
        retain_weight=getattr(args, "retain_weight", 1.0))


def _eval_config(args):
    from unlearn.evaluate import EvalConfig

    return EvalConfig(probes=args.eval_probes, text=args.eval_text, every=args.eval_every,
                      max_text_tokens=args.eval_text_tokens)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unlearn",
                                     description="Who's Harry Potter unlearning")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("whp", help="reinforce -> labels -> finetune into one run directory")
    p.add_argument("--baseline", type=model_path, required=True, help="model to unlearn from")
    p.add_argument("--target", type=existing_file, required=True, help="text to unlearn")
    p.add_argument("--anchors", type=existing_file, required=True, help="anchored terms JSON/CSV")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--alpha", type=positive_float, action="append", default=None,
                   help="Eq. 1 strength (repeat for several; the finetune uses the first)")
    _label_space_arg(p)
    p.add_argument("--reinforce-epochs", type=positive_float, default=3.0)
    p.add_argument("--reinforce-lr", type=positive_float, default=5e-5)
    p.add_argument("--label-batch-size", type=positive_int, default=8)
    _text_format_arg(p)
    _common(p)
    _finetune_args(p)

    p = sub.add_parser("reinforce", help="train the reinforced model on the target text")
    p.add_argument("--baseline", type=model_path, required=True)
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--out", required=True, help="folder for the reinforced model")
    p.add_argument("--epochs", type=positive_float, default=3.0)
    p.add_argument("--lr", type=positive_float, default=5e-5)
    p.add_argument("--batch-size", type=positive_int, default=8)
    _text_format_arg(p)
    _common(p)

    p = sub.add_parser("labels", help="generic labels (Eq. 1 + anchored terms) for the target")
    p.add_argument("--baseline", type=model_path, required=True)
    p.add_argument("--reinforced", type=model_path, required=True)
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--anchors", type=existing_file, required=True)
    p.add_argument("--out", required=True, help="folder for the label dataset")
    p.add_argument("--alpha", type=positive_float, action="append", default=None)
    _text_format_arg(p)
    _label_space_arg(p)
    p.add_argument("--batch-size", type=positive_int, default=8)
    _common(p)

    p = sub.add_parser("finetune", help="finetune the baseline on generic labels")
    p.add_argument("--baseline", type=model_path, required=True)
    p.add_argument("--labels", type=labels_dir, required=True, help="label dataset folder")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--alpha", type=positive_float, default=None,
                   help="which computed alpha to train on (default: the first)")
    _common(p)
    _finetune_args(p)

    p = sub.add_parser("baseline", help="comparison method: ga, graddiff or npo")
    p.add_argument("--method", choices=("ga", "graddiff", "npo"), required=True)
    p.add_argument("--baseline", type=model_path, required=True)
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--retain", type=existing_file, default=None, help="retain text (graddiff)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--npo-beta", type=positive_float, default=0.1)
    p.add_argument("--retain-weight", type=positive_float, default=1.0)
    _text_format_arg(p)
    _common(p)
    _finetune_args(p)

    p = sub.add_parser("suggest", help="anchored-term candidates for a person to review")
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--general", type=existing_file, required=True)
    p.add_argument("--baseline", type=model_path, default=None)
    p.add_argument("--reinforced", type=model_path, default=None)
    p.add_argument("--top-k", type=positive_int, default=50)
    p.add_argument("--out", default=None, help="write the candidates as JSON here")
    p.add_argument("--device", default="cpu")
    return parser


# ---------------------------------------------------------------- progress

class TqdmProgress:
    """`on_progress` for the CLI: one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        stage, total = event.get("stage"), event.get("total")
        if stage != self.stage or (self.bar is not None and total != self.bar.total):
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit="step" if stage != "labels" else "blk",
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.n = event.get("step", 0)
        if event.get("loss") is not None:
            self.bar.set_postfix(loss=f"{event['loss']:.4f}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _quiet_libraries() -> None:
    """Our bars only: silence the libraries' own progress bars and info logs."""
    try:
        import datasets
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


# ---------------------------------------------------------------- commands

def _report(line: str) -> None:
    """Print a result line once (on the main process of a multi-process launch)."""
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(line)


def _summary(result: dict) -> str:
    stages = ", ".join(f"{k} {v.get('status')} {v.get('seconds', 0):.1f}s"
                       for k, v in result.get("stages", {}).items())
    return f"{result.get('status')}: {stages}"


def cmd_whp(args, progress) -> int:
    from unlearn.pipeline import WHPConfig, run_whp
    from unlearn.reinforce import ReinforceConfig

    config = WHPConfig(
        baseline=args.baseline, target=args.target, anchors=args.anchors, out=args.out,
        alphas=tuple(args.alpha or (5.0,)), label_space=args.label_space,
        text_format=args.text_format, block_size=args.block_size,
        max_target_tokens=args.max_target_tokens, label_batch_size=args.label_batch_size,
        seed=args.seed, device=args.device,
        reinforce=ReinforceConfig(epochs=args.reinforce_epochs, lr=args.reinforce_lr,
                                  batch_size=args.batch_size),
        finetune=_finetune_config(args, "whp"), eval=_eval_config(args))
    result = run_whp(config, on_progress=progress, force=args.force)
    progress.close()
    _report(f"{args.out}: {_summary(result)}")
    return 0 if result["status"] == "completed" else 1


def cmd_reinforce(args, progress) -> int:
    from unlearn.data import read_text, resolve_text_format, truncate_text
    from unlearn.models import load_tokenizer
    from unlearn.reinforce import ReinforceConfig, reinforce

    config = ReinforceConfig(epochs=args.epochs, lr=args.lr, block_size=args.block_size,
                             batch_size=args.batch_size, seed=args.seed, device=args.device,
                             text_format=resolve_text_format(args.text_format, args.baseline))
    tok = load_tokenizer(args.baseline)
    text = truncate_text(tok, read_text(args.target), args.max_target_tokens)
    info = reinforce(args.baseline, text, args.out, config, on_progress=progress)
    progress.close()
    print(f"reinforced model saved to {args.out} ({info['steps']} steps, "
          f"{info['seconds']:.1f}s)")
    return 0


def cmd_labels(args, progress) -> int:
    from unlearn.anchors import filter_redundant, load_anchors
    from unlearn.data import read_text, resolve_text_format, truncate_text
    from unlearn.label_runner import LabelConfig, compute_labels
    from unlearn.models import load_model

    config = LabelConfig(alphas=tuple(args.alpha or (5.0,)), space=args.label_space,
                         text_format=resolve_text_format(args.text_format, args.baseline),
                         block_size=args.block_size, batch_size=args.batch_size,
                         seed=args.seed, device=args.device)
    anchors, dropped = filter_redundant(load_anchors(args.anchors))
    base, tok = load_model(args.baseline, device=args.device)
    reinf, _ = load_model(args.reinforced, device=args.device)
    text = truncate_text(tok, read_text(args.target), args.max_target_tokens)
    ds = compute_labels(base, reinf, tok, text, anchors, config, args.out,
                        on_progress=lambda d, t: progress({"stage": "labels", "step": d,
                                                           "total": t}))
    progress.close()
    print(f"labels for {len(ds)} blocks saved to {args.out} "
          f"({len(anchors)} anchored terms, {len(dropped)} redundant dropped)")
    return 0


def cmd_finetune(args, progress) -> int:
    from unlearn.pipeline import run_finetune

    result = run_finetune(args.baseline, args.labels, args.out, _finetune_config(args, "whp"),
                          _eval_config(args), alpha=args.alpha, on_progress=progress,
                          force=args.force)
    progress.close()
    _report(f"{args.out}: {_summary(result)}")
    return 0 if result["status"] == "completed" else 1


def cmd_baseline(args, progress) -> int:
    from unlearn.pipeline import BaselineConfig, run_baseline

    if args.method == "graddiff" and not args.retain:
        raise argparse.ArgumentTypeError("--method graddiff needs --retain FILE")
    config = BaselineConfig(baseline=args.baseline, target=args.target, out=args.out,
                            retain=args.retain, max_target_tokens=args.max_target_tokens,
                            max_retain_tokens=args.max_target_tokens,
                            text_format=args.text_format,
                            finetune=_finetune_config(args, args.method),
                            eval=_eval_config(args))
    result = run_baseline(config, on_progress=progress, force=args.force)
    progress.close()
    _report(f"{args.out}: {_summary(result)}")
    return 0 if result["status"] == "completed" else 1


def _jsonable(value):
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def cmd_suggest(args, progress) -> int:
    from unlearn import suggest
    from unlearn.data import read_text

    if (args.baseline is None) != (args.reinforced is None):
        raise argparse.ArgumentTypeError("--baseline and --reinforced go together")
    target, general = read_text(args.target), read_text(args.general)
    result = {"frequency": _jsonable(suggest.suggest_by_frequency(target, general, args.top_k))}
    if args.baseline:
        from unlearn.models import load_model

        base, tok = load_model(args.baseline, device=args.device)
        reinf, _ = load_model(args.reinforced, device=args.device)
        result["reinforcement"] = _jsonable(
            suggest.suggest_by_reinforcement(base, reinf, tok, target, args.top_k))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"candidates written to {args.out}")
    else:
        print(text)
    return 0


HANDLERS = {"whp": cmd_whp, "reinforce": cmd_reinforce, "labels": cmd_labels,
            "finetune": cmd_finetune, "baseline": cmd_baseline, "suggest": cmd_suggest}


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` ([command, *options]) and run the command; returns the exit code.

    2 = usage error (message on stderr), 1 = run failed or was cancelled, 0 = success.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed the usage and the error
        return int(exc.code or 0)
    from unlearn.pipeline import RunConfigMismatch
    from unlearn.preflight import preflight
    from unlearn.reinforce import Cancelled

    _quiet_libraries()
    progress = TqdmProgress()
    sub = parser._subparsers._group_actions[0].choices[args.command]
    try:
        preflight(args)  # inputs, output folder, device: checked before the first stage
        return HANDLERS[args.command](args, progress)
    except (argparse.ArgumentTypeError, RunConfigMismatch, FileNotFoundError,
            FileExistsError) as exc:
        progress.close()
        sub.print_usage(sys.stderr)
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # config validation (clear messages from __post_init__)
        progress.close()
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        progress.close()
        print(f"cancelled: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close()
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
