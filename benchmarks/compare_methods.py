"""Audit several unlearning methods on the demo in one run and print one table (issue 4).

    python benchmarks/compare_methods.py --model whp=runs/whp/final \
        --whp-inference runs/whp/reinforced --model ga=runs/ga/final --model npo=runs/npo/final \
        --out reports/compare

`original` (the demo baseline) and `reference` (never saw the target) are always included;
`--whp-inference REINFORCED` adds WHP at inference time (Eq. 1 on the baseline and that
reinforced model at every step, `unlearn.inference_whp`). Writes report.json/report.html.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audits.probes import load_suite  # noqa: E402
from audits.report import HEADLINE, AuditConfig, run_suite, write_report  # noqa: E402
from unlearn.inference_whp import load_whp_inference  # noqa: E402
from unlearn.models import load_model  # noqa: E402

MODELS = ROOT / "assets" / "models"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="NAME=PATH (repeatable)")
    p.add_argument("--whp-inference", default=None, help="reinforced model folder")
    p.add_argument("--alpha", type=float, default=5.0, help="alpha of the inference variant")
    p.add_argument("--space", choices=("logprob", "logit"), default="logprob",
                   help="Eq. 1 space of the inference variant (unlearn.labels.SPACES)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    models = {"original": load_model(str(MODELS / "baseline"))}
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            p.error(f"--model needs NAME=PATH, got {spec!r}")
        models[name] = load_model(path)
    if args.whp_inference:
        models["whp_inference"] = load_whp_inference(str(MODELS / "baseline"),
                                                     args.whp_inference, alpha=args.alpha,
                                                     space=args.space)
    models["reference"] = load_model(str(MODELS / "reference"))
    t0 = time.perf_counter()
    report = run_suite(models, load_suite("demo"), AuditConfig(limit=args.limit))
    write_report(report, args.out)
    keys = [k for k in HEADLINE if k != "forget_quality"] + ["forget_quality"]
    print(f"{'score':<36}" + "".join(f"{n:>14}" for n in models))
    for k in keys:
        row = [report.models[n].scores.get(k) for n in models]
        print(f"{k:<36}" + "".join(f"{'-':>14}" if v is None else f"{v:>14.4g}" for v in row))
    print(f"\n({time.perf_counter() - t0:.0f} s; report in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
