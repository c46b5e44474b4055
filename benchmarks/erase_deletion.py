"""Mean cost of an ERASE deletion against a full recompute, on synthetic data of growing size.

For each n: time a full Q-k-means fit (what a deletion costs without the certificate), then delete
`--deletions` random examples one by one (certified or recomputed as the algorithm decides) and
report the mean seconds per deletion, the recompute rate and the ratio full-fit / mean-deletion.
The LM is never involved (embeddings are stored), so this is the whole unlearning cost.

    python benchmarks/erase_deletion.py --sizes 1000,10000,100000 --out erase_deletion.json

`--quick` (what `python -m benchmarks` runs): sizes 1000,10000, 50 deletions, 1 full fit per size,
unless those flags are given; `--markdown` prints a markdown table instead of JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearn.erase.qkmeans import QKMeansConfig, delete, fit  # noqa: E402


def synthetic(n: int, dim: int, blobs: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """A Gaussian mixture: `blobs` centres at scale 3, unit noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(blobs, dim))
    x = centres[rng.integers(blobs, size=n)] + rng.normal(size=(n, dim))
    return x, [f"s{i}" for i in range(n)]


def run(n: int, config: QKMeansConfig, dim: int, deletions: int, repeats: int) -> dict:
    x, ids = synthetic(n, dim, blobs=config.k, seed=config.seed)
    fits = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = fit(x, ids, config)
        fits.append(time.perf_counter() - start)
    rng = np.random.default_rng(config.seed + 1)
    records = [delete(state, ids[i]) for i in rng.choice(n, deletions, replace=False)]
    mean_delete = statistics.fmean(r.seconds for r in records)
    certified = [r.seconds for r in records if r.action == "certified"]
    full = statistics.median(fits)
    return {"n": n, "full_fit_seconds": full, "mean_deletion_seconds": mean_delete,
            "mean_certified_seconds": statistics.fmean(certified) if certified else None,
            "recompute_rate": sum(r.action == "recompute" for r in records) / len(records),
            "speedup_vs_full_recompute": full / mean_delete, "deletions": deletions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="default 1000,10000,100000")
    parser.add_argument("--dim", type=int, default=16, help="embedding dimension (after PCA)")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--eps", type=float, default=0.5)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--deletions", type=int, default=None, help="default 200")
    parser.add_argument("--repeats", type=int, default=None,
                        help="full fits timed per size (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1000,10000, 50 deletions, 1 fit (unless given)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    quick = {"sizes": "1000,10000", "deletions": 50, "repeats": 1}
    full = {"sizes": "1000,10000,100000", "deletions": 200, "repeats": 3}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.deletions < 1 or args.repeats < 1:
        parser.error("--deletions and --repeats must be >= 1")
    config = QKMeansConfig(k=args.k, eps=args.eps, iters=args.iters, seed=args.seed)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        row = run(n, config, args.dim, args.deletions, args.repeats)
        rows.append(row)
        if not args.markdown:
            print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v)
                              for k, v in row.items()}), flush=True)
    if args.markdown:
        print(f"eps {args.eps}, k {args.k}, dim {args.dim}, {args.deletions} deletions, "
              f"{args.repeats} full fit(s) per size\n\n"
              "| n | full fit | mean deletion | recompute rate | full fit / deletion |\n"
              "|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['n']} | {r['full_fit_seconds']:.4f} s "
                  f"| {r['mean_deletion_seconds']:.5f} s | {r['recompute_rate']:.2f} "
                  f"| **{r['speedup_vs_full_recompute']:.1f}x** |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"config": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
