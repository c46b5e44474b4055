"""`python -m audits run ...`: load models, run a suite, write report.json and report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audits.constants import DEFAULT_MEASURES, JUDGES, MEASURES
from unlearn.runtime import Progress

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _model_pair(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(f"model name {name!r} must be letters, digits, - or _")
    local = path.startswith((".", "/", "~")) or Path(path).expanduser().exists() \
        or path.count("/") != 1
    if local and not Path(path).expanduser().exists():
        raise argparse.ArgumentTypeError(f"model path for {name!r} does not exist: {path}")
    return name, path


def _measures(text: str) -> tuple[str, ...]:
    items = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in items if m not in MEASURES]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"unknown measure(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(MEASURES)}")
    return items


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from unlearn.models import DTYPES, QUANTIZATIONS

    parser = argparse.ArgumentParser(prog="python -m audits",
                                     description="Audit unlearning: compare models on probes.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite on models and write a report")
    run.add_argument("--model", action="append", type=_model_pair, required=True,
                     metavar="NAME=PATH", help="a model to audit (repeat); NAME 'reference' is "
                     "the never-trained model; 'original' is the baseline for deltas")
    run.add_argument("--suite", default="demo", help="'demo', 'adversarial' (the demo probes "
                     "and the adversarial attacks) or a folder of probe files")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--device", default="cpu")
    run.add_argument("--dtype", default="auto", choices=DTYPES,
                     help="weights dtype (auto: the checkpoint's; speed and effect of bfloat16 "
                     "in docs/APP.md#performance)")
    run.add_argument("--quantization", default="none", choices=QUANTIZATIONS)
    run.add_argument("--measures", type=_measures, default=DEFAULT_MEASURES,
                     help=f"comma-separated subset of {','.join(MEASURES)}")
    run.add_argument("--limit", type=_positive, default=None, help="first N items per probe set")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--max-new-tokens", type=_positive, default=24,
                     help="tokens sampled per completion")
    run.add_argument("--temperature", type=float, default=1.0)
    run.add_argument("--top-p", type=float, default=0.9)
    run.add_argument("--samples", type=_positive, default=1, help="completions per prompt")
    run.add_argument("--batch-size", type=_positive, default=32)
    run.add_argument("--judge", default="rule", choices=JUDGES,
                     help="llm: set AUDIT_JUDGE_BASE_URL / _MODEL / _API_KEY")
    run.add_argument("--lm-eval-tasks", default="", help="comma-separated lm-eval task names")
    run.add_argument("--lm-eval-include", default=None, help="folder of local task YAMLs")
    run.add_argument("--lm-eval-limit", type=_positive, default=None)
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _adversarial_args(run)
    return parser


def _ints(text: str) -> tuple[int, ...]:
    try:
        items = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None
    if not items or any(i < 0 for i in items):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return items


def _adversarial_args(run) -> None:
    """Options of the adversarial suite (`--suite adversarial`, or `--adversarial` with a
    suite folder)."""
    from audits.adversarial.runner import ATTACKS

    g = run.add_argument_group("adversarial suite (--suite adversarial = demo probes + attacks)")
    g.add_argument("--adversarial", action="store_true", help="also run the attacks")
    g.add_argument("--attacks", default=",".join(ATTACKS),
                   help=f"comma-separated subset of {','.join(ATTACKS)}")
    g.add_argument("--relearn-steps", type=_ints, default=(0, 10, 25, 50))
    g.add_argument("--relearn-method", default="full", choices=("full", "lora"))
    g.add_argument("--relearn-lr", type=float, default=1e-4)
    g.add_argument("--relearn-text", default=None,
                   help="relearning file (default: half the answers' paragraphs of target.txt)")
    g.add_argument("--cache-dir", default=None, help="cache of relearning curves")
    g.add_argument("--icl-shots", type=_ints, default=(0, 1, 3, 8))
    g.add_argument("--kway", type=_ints, default=(2, 5, 0), help="k values (0 = all names)")
    g.add_argument("--templates", default=None, help="framing template file (JSON)")
    g.add_argument("--suffix-steps", type=_positive, default=20)
    g.add_argument("--suffix-tokens", type=_positive, default=6)
    g.add_argument("--suffix-probes", type=_positive, default=8)


def _adversarial_config(args):
    """The AdversarialConfig of the CLI options, or None when the attacks are not asked for."""
    if not (args.adversarial or args.suite == "adversarial"):
        return None
    from dataclasses import replace

    from audits.adversarial.icl import ICLConfig
    from audits.adversarial.kway import KWayConfig
    from audits.adversarial.relearn import RelearnConfig
    from audits.adversarial.runner import AdversarialConfig
    from audits.adversarial.suffix import SuffixConfig

    cfg = AdversarialConfig(
        attacks=tuple(a.strip() for a in args.attacks.split(",") if a.strip()), seed=args.seed,
        batch_size=args.batch_size, relearn_text=args.relearn_text, cache_dir=args.cache_dir,
        relearn=RelearnConfig(steps=args.relearn_steps, method=args.relearn_method,
                              lr=args.relearn_lr, seed=args.seed),
        icl=ICLConfig(shots=args.icl_shots, seed=args.seed),
        kway=KWayConfig(ks=args.kway, headline_k=5 if 5 in args.kway else args.kway[0],
                        seed=args.seed),
        suffix=SuffixConfig(n_tokens=args.suffix_tokens, steps=args.suffix_steps,
                            seed=args.seed), suffix_probes=args.suffix_probes)
    return replace(cfg, templates=args.templates) if args.templates else cfg


def _config(args):
    from audits.familiarity import CompletionConfig
    from audits.general import GeneralConfig
    from audits.generation import GenerationConfig
    from audits.probability import ProbabilityConfig
    from audits.report import AuditConfig
    from audits.trivia import TriviaConfig
    from audits.verbatim import VerbatimConfig

    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                           top_p=args.top_p, batch_size=args.batch_size, seed=args.seed)
    return AuditConfig(
        measures=args.measures, seed=args.seed, limit=args.limit, judge=args.judge,
        completion=CompletionConfig(gen, args.samples),
        probability=ProbabilityConfig(batch_size=args.batch_size),
        trivia=TriviaConfig(batch_size=args.batch_size),
        verbatim=VerbatimConfig(batch_size=min(args.batch_size, 16)),
        general=GeneralConfig(batch_size=args.batch_size),
        lm_eval_tasks=[t.strip() for t in args.lm_eval_tasks.split(",") if t.strip()],
        lm_eval_include=args.lm_eval_include, lm_eval_limit=args.lm_eval_limit,
        adversarial=_adversarial_config(args))


def run(args, parser) -> int:
    names = [n for n, _ in args.model]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        parser.error(f"duplicate model name(s): {', '.join(dupes)}")
    if args.lm_eval_include and not Path(args.lm_eval_include).is_dir():
        parser.error(f"--lm-eval-include folder does not exist: {args.lm_eval_include}")
    try:
        config = _config(args)
        if args.judge == "llm":
            from audits.judges import LLMJudgeConfig

            LLMJudgeConfig()  # fail now, not after loading models, when the env is incomplete
    except ValueError as exc:
        parser.error(str(exc))
    from audits.errors import AuditError
    from audits.probes import load_suite
    from audits.report import run_suite, write_report
    from unlearn.models import ModelLoadError, load_models
    from unlearn.preflight import PreflightError, check_device, check_writable_dir

    try:  # before loading any model: the device exists, the report can be written
        check_device(args.device)
        check_writable_dir(args.out)
    except PreflightError as exc:
        parser.error(str(exc))

    try:
        suite = load_suite("demo" if args.suite == "adversarial" else args.suite)
        # a LoRA adapter folder shares the base it names when that base is audited too
        models = load_models(dict(args.model), device=args.device, dtype=args.dtype,
                             quantization=args.quantization)
    except (AuditError, ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=1, desc="audit", file=sys.stderr, unit="step")

    def progress(event: Progress) -> None:
        if bar is not None:
            bar.total = event.total
            bar.n = event.step
            bar.set_postfix_str(event.message)
            bar.refresh()

    try:
        report = run_suite(models, suite, config, on_progress=progress)
        paths = write_report(report, args.out)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if bar is not None:
            bar.close()
    for name, m in report.models.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in m.scores.items() if v is not None)
        print(f"{name}: {shown}")
    for note in report.skipped:
        print(f"skipped {note}", file=sys.stderr)
    print(f"wrote {paths['json']} and {paths['html']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with code 2 on usage errors
    if args.command == "run":
        return run(args, parser)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE
