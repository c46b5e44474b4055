"""Accuracy of ERASE vs random vs Auto-CoT vs zero-shot (vs SISA) on every demo task, k = 4 and 8.

Runs `python -m unlearn erase evaluate` per task and k (SISA once per task, with k = 8: it does not
use a prompt), then prints a markdown table of accuracy and key coverage (the accuracy a perfect
copier would get from the selected examples).

    python benchmarks/erase_accuracy.py --model assets/models/baseline --out-dir runs/erase_acc
    python benchmarks/erase_accuracy.py --out-dir runs/erase_acc --table-only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn.erase.task import load_task  # noqa: E402

TASKS = ("colours", "moods", "towns")
METHODS = ("erase", "random", "autocot", "zero-shot", "sisa")


def run(model: str, out_dir: Path, ks: list[int], sisa: bool, prefix: str) -> None:
    for task in TASKS:
        for k in ks:
            methods = "erase,random,autocot,zero-shot" + (",sisa" if sisa and k == max(ks) else "")
            subprocess.run([sys.executable, "-m", "unlearn", "erase", "evaluate", "--model", model,
                            "--task", str(ROOT / "assets/demo/tasks" / task), "--k", str(k),
                            "--seed", "0", "--methods", methods, "--cache",
                            str(out_dir / "cache"), "--out",
                            str(out_dir / f"{prefix}-{task}-k{k}.json")], check=True, cwd=ROOT)


def table(out_dir: Path, prefix: str) -> str:
    rows = ["| task | k | " + " | ".join(METHODS) + " | key coverage erase / random / autocot |",
            "|---|---|" + "---|" * (len(METHODS) + 1)]
    for path in sorted(out_dir.glob(f"{prefix}-*-k*.json")):
        d = json.loads(path.read_text())
        acc = [f"{d['accuracy'][m]:.3f}" if m in d["accuracy"] else "" for m in METHODS]
        task = load_task(ROOT / "assets/demo/tasks" / d["task"])
        by_id = {ex.id: ex for ex in task.train}
        cov = {m: task.recall_ceiling([by_id[i] for i in ids], task.test)
               for m, ids in d["selected"].items()}
        covs = " / ".join(f"{cov[m]:.2f}" for m in ("erase", "random", "autocot") if m in cov)
        rows.append(f"| {d['task']} | {d['k']} | " + " | ".join(acc) + f" | {covs} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/models/baseline")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--prefix", default="acc", help="file name prefix of the result files")
    parser.add_argument("--ks", default="8,4")
    parser.add_argument("--no-sisa", action="store_true")
    parser.add_argument("--table-only", action="store_true", help="only summarise existing files")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    if not args.table_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        run(args.model, out_dir, [int(k) for k in args.ks.split(",")], not args.no_sisa,
            args.prefix)
    print(table(out_dir, args.prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
