"""Command line of the unlearning core: `python -m unlearn {whp,reinforce,labels,finetune,...}`.

Thin: argparse -> config dataclasses -> `unlearn.pipeline` functions. Usage errors (missing
files, bad values) exit with code 2 and a one-line message, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unlearn.options import (
    above,
    add_options,
    at_least,
    existing_file,
    flag_type,
    from_args,
    model_path,
)
from unlearn.pipeline import COMPARISON_METHODS
from unlearn.runtime import Cancelled, Progress

# ---------------------------------------------------------------- parser, from the configs
# Flags are generated from the config dataclasses (`unlearn.options`): names, defaults, help,
# choices and checks exist once, on the fields. Only command-specific flags are written here.

FINETUNE_FLAGS = ("steps", "lr", "batch_size", "grad_accum", "warmup_steps", "lora", "lora_r",
                  "lora_alpha", "lora_adapter", "quantization", "save_every")
EVAL_FLAGS = {"probes": "--eval-probes", "text": "--eval-text", "every": "--eval-every",
              "max_text_tokens": "--eval-text-tokens", "evaluator": "--evaluator"}


def labels_dir(value: str) -> str:
    from unlearn.label_store import labels_complete

    if not labels_complete(value):
        raise argparse.ArgumentTypeError(f"not a finished label dataset: {value}")
    return value


def _finetune_args(p: argparse.ArgumentParser) -> None:
    from unlearn.evaluate import EvalConfig
    from unlearn.finetune import FinetuneConfig

    g = p.add_argument_group("finetune")
    add_options(g, FinetuneConfig, only=FINETUNE_FLAGS, dest_prefix="finetune.")
    g.add_argument("--force", action="store_true",
                   help="start over in a run directory that holds a different config")
    e = p.add_argument_group("checkpoint evaluation")
    add_options(e, EvalConfig, only=EVAL_FLAGS, flags=EVAL_FLAGS, dest_prefix="eval.")


def _finetune_config(args, method: str, **shared):
    from unlearn.finetune import FinetuneConfig

    lora = getattr(args, "finetune.lora") or getattr(args, "finetune.quantization") != "none"
    return from_args(FinetuneConfig, args, dest_prefix="finetune.", method=method, lora=lora,
                     **shared)


def _eval_config(args):
    from unlearn.evaluate import EvalConfig

    config = from_args(EvalConfig, args, dest_prefix="eval.")
    if config.enabled and not config.evaluator:  # fail before any stage runs, not at the finetune
        raise argparse.ArgumentTypeError(
            "--eval-probes/--eval-text need --evaluator, e.g. "
            "--evaluator audits.checkpoint:checkpoint_evaluator")
    return config


def _model_flag(p, name: str, required: bool = True, help: str | None = None) -> None:
    p.add_argument(f"--{name}", type=model_path, required=required, default=None, help=help)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its sub-command parsers by name."""
    from unlearn.finetune import FinetuneConfig
    from unlearn.label_runner import LabelConfig
    from unlearn.pipeline import ComparisonConfig, WHPConfig
    from unlearn.reinforce import ReinforceConfig

    parser = argparse.ArgumentParser(prog="python -m unlearn",
                                     description="Who's Harry Potter unlearning")
    sub = parser.add_subparsers(dest="command", required=True)
    subs: dict[str, argparse.ArgumentParser] = {}
    label_flags = {"alphas": "--alpha", "space": "--label-space", "rules": "--label-rule"}

    p = subs["whp"] = sub.add_parser(
        "whp", help="reinforce -> labels -> finetune into one run directory")
    add_options(p, WHPConfig, only=("baseline", "target", "anchors", "out"))
    g = p.add_argument_group("labels")
    add_options(g, LabelConfig, only=("alphas", "space", "rules", "batch_size", "dtype"),
                flags={**label_flags, "batch_size": "--label-batch-size",
                       "dtype": "--label-dtype"}, dest_prefix="labels.")
    g = p.add_argument_group("reinforce")
    add_options(g, ReinforceConfig, only=("epochs", "lr", "batch_size"), prefix="reinforce-",
                dest_prefix="reinforce.")
    add_options(p, WHPConfig, only=("text_format", "block_size", "max_target_tokens", "device",
                                    "seed"))
    _finetune_args(p)

    p = subs["reinforce"] = sub.add_parser(
        "reinforce", help="train the reinforced model on the target text")
    _model_flag(p, "baseline")
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--out", required=True, help="folder for the reinforced model")
    add_options(p, ReinforceConfig, only=("epochs", "lr", "batch_size", "block_size", "device",
                                          "seed"))
    add_options(p, WHPConfig, only=("text_format", "max_target_tokens"))

    p = subs["labels"] = sub.add_parser(
        "labels", help="generic labels (Eq. 1 + anchored terms) for the target")
    _model_flag(p, "baseline")
    _model_flag(p, "reinforced")
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--anchors", type=existing_file, required=True)
    p.add_argument("--out", required=True, help="folder for the label dataset")
    add_options(p, LabelConfig, only=("alphas", "space", "rules", "batch_size", "block_size",
                                      "device", "dtype", "seed", "shard_size"), flags=label_flags,
                defaults={"device": "cpu"})
    add_options(p, WHPConfig, only=("text_format", "max_target_tokens"))

    p = subs["finetune"] = sub.add_parser(
        "finetune", help="finetune the baseline on generic labels")
    _model_flag(p, "baseline")
    p.add_argument("--labels", type=labels_dir, required=True, help="label dataset folder")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--alpha", type=flag_type(float, above(0)), default=None,
                   help="which computed alpha to train on (default: the first)")
    add_options(p, FinetuneConfig, only=("block_size", "device", "seed"),
                dest_prefix="finetune.")
    p.add_argument("--max-target-tokens", type=flag_type(int, at_least(1)), default=None,
                   help="no effect here (the label dataset fixes the text); kept so that older "
                        "commands still parse")
    _finetune_args(p)

    p = subs["comparison"] = sub.add_parser(
        "comparison", aliases=["baseline"], help="comparison method: ga, graddiff or npo")
    subs["baseline"] = p
    p.add_argument("--method", choices=COMPARISON_METHODS, required=True)
    add_options(p, ComparisonConfig, only=("baseline", "target", "retain", "out", "text_format",
                                           "max_target_tokens", "max_retain_tokens"))
    add_options(p, FinetuneConfig, only=("npo_beta", "retain_weight", "block_size", "device",
                                         "seed"), dest_prefix="finetune.")
    _finetune_args(p)

    p = subs["suggest"] = sub.add_parser(
        "suggest", help="anchored-term candidates for a person to review")
    p.add_argument("--target", type=existing_file, required=True)
    p.add_argument("--general", type=existing_file, required=True)
    _model_flag(p, "baseline", required=False)
    _model_flag(p, "reinforced", required=False)
    p.add_argument("--top-k", type=flag_type(int, at_least(1)), default=50)
    p.add_argument("--out", default=None, help="write the candidates as JSON here")
    p.add_argument("--device", default="cpu")
    return parser, subs


# ---------------------------------------------------------------- progress

class TqdmProgress:
    """`on_progress` for the CLI: one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None

    def __call__(self, event: Progress) -> None:
        from tqdm import tqdm

        stage, total = event.stage, event.total
        if stage != self.stage or (self.bar is not None and total != self.bar.total):
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit="step" if stage != "labels" else "blk",
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.n = event.step
        if event.loss is not None:
            self.bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)
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


def cmd_whp(args, progress, evaluator=None) -> int:
    from unlearn.label_runner import LabelConfig
    from unlearn.pipeline import WHPConfig, run_whp
    from unlearn.reinforce import ReinforceConfig

    config = from_args(
        WHPConfig, args,
        reinforce=from_args(ReinforceConfig, args, dest_prefix="reinforce."),
        labels=from_args(LabelConfig, args, dest_prefix="labels."),
        finetune=_finetune_config(args, "whp"), eval=_eval_config(args))
    result = run_whp(config, on_progress=progress, force=args.force, evaluator=evaluator)
    progress.close()
    _report(f"{args.out}: {_summary(result)}")
    return 0 if result["status"] == "completed" else 1


def cmd_reinforce(args, progress, evaluator=None) -> int:
    from unlearn.data import read_text, resolve_text_format, truncate_text
    from unlearn.models import load_tokenizer
    from unlearn.reinforce import ReinforceConfig, reinforce

    config = from_args(ReinforceConfig, args,
                       text_format=resolve_text_format(args.text_format, args.baseline))
    tok = load_tokenizer(args.baseline)
    text = truncate_text(tok, read_text(args.target), args.max_target_tokens)
    info = reinforce(args.baseline, text, args.out, config, on_progress=progress)
    progress.close()
    print(f"reinforced model saved to {args.out} ({info['steps']} steps, "
          f"{info['seconds']:.1f}s)")
    return 0


def cmd_labels(args, progress, evaluator=None) -> int:
    from unlearn.anchors import filter_redundant, load_anchors
    from unlearn.data import read_text, resolve_text_format, truncate_text
    from unlearn.label_runner import LabelConfig, compute_labels
    from unlearn.models import load_model

    config = from_args(LabelConfig, args,
                       text_format=resolve_text_format(args.text_format, args.baseline))
    from unlearn.runtime import process_device

    config.device = process_device(config.device)  # one GPU a process under accelerate launch
    anchors, dropped = filter_redundant(load_anchors(args.anchors))
    base, tok = load_model(args.baseline, device=config.device, dtype=config.dtype)
    reinf, _ = load_model(args.reinforced, device=config.device, dtype=config.dtype)
    text = truncate_text(tok, read_text(args.target), args.max_target_tokens)
    ds = compute_labels(base, reinf, tok, text, anchors, config, args.out, on_progress=progress)
    progress.close()
    _report(f"labels for {len(ds)} blocks saved to {args.out} "
            f"({len(anchors)} anchored terms, {len(dropped)} redundant dropped)")
    return 0


def cmd_finetune(args, progress, evaluator=None) -> int:
    from unlearn.pipeline import run_finetune

    if args.max_target_tokens is not None:
        print("note: --max-target-tokens has no effect on finetune (the labels fix the text)",
              file=sys.stderr)

    result = run_finetune(args.baseline, args.labels, args.out, _finetune_config(args, "whp"),
                          _eval_config(args), alpha=args.alpha, on_progress=progress,
                          force=args.force, evaluator=evaluator)
    progress.close()
    _report(f"{args.out}: {_summary(result)}")
    return 0 if result["status"] == "completed" else 1


def cmd_comparison(args, progress, evaluator=None) -> int:
    from unlearn.pipeline import ComparisonConfig, run_comparison

    if args.method == "graddiff" and not args.retain:
        raise argparse.ArgumentTypeError("--method graddiff needs --retain FILE")
    config = from_args(ComparisonConfig, args, finetune=_finetune_config(args, args.method),
                       eval=_eval_config(args))
    result = run_comparison(config, on_progress=progress, force=args.force, evaluator=evaluator)
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


def cmd_suggest(args, progress, evaluator=None) -> int:
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
            "finetune": cmd_finetune, "comparison": cmd_comparison, "baseline": cmd_comparison,
            "suggest": cmd_suggest}


def main(argv: list[str] | None = None, evaluator=None) -> int:
    """Parse `argv` ([command, *options]) and run the command; returns the exit code.

    2 = usage error (message on stderr), 1 = run failed or was cancelled, 0 = success.
    `evaluator` (an `unlearn.evaluate.EvaluatorFactory`) scores checkpoints for `--eval-*`
    when a caller hands one in; otherwise `--evaluator MODULE:FUNCTION` names it.
    """
    parser, subs = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed the usage and the error
        return int(exc.code or 0)
    from unlearn.preflight import preflight
    from unlearn.run_dir import RunConfigMismatch

    _quiet_libraries()
    progress = TqdmProgress()
    sub = subs[args.command]
    try:
        preflight(args)  # inputs, output folder, device: checked before the first stage
        return HANDLERS[args.command](args, progress, evaluator)
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
