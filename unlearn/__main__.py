"""`python -m unlearn COMMAND ...`: dispatch to the sub-command modules.

Nothing under `unlearn/` imports `audits` (tests/test_boundaries.py): checkpoint evaluation
behind `--eval-probes` / `--eval-text` is a plug-in the caller names with
`--evaluator audits.checkpoint:checkpoint_evaluator`.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Each module has `main(argv: list[str] | None) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "build-demo": ("unlearn.demo.build", "rebuild the demo world, tokenizer and models"),
    "whp": ("unlearn.cli", "run the whole WHP pipeline (reinforce -> labels -> finetune)"),
    "reinforce": ("unlearn.cli", "train the reinforced model on the target text"),
    "labels": ("unlearn.cli", "compute generic labels for the target text"),
    "finetune": ("unlearn.cli", "finetune on generic labels"),
    "comparison": ("unlearn.cli", "run a comparison method: ga, graddiff, npo"),
    "baseline": ("unlearn.cli", "the same as comparison (older name)"),
    "suggest": ("unlearn.cli", "suggest anchored-term candidates for review"),
    "erase": ("unlearn.erase.cli", "in-context exact unlearning: select|delete|evaluate|cost"),
}


def usage() -> str:
    lines = ["usage: python -m unlearn COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    if module.__name__ == "unlearn.cli":
        return int(module.main([command, *rest]) or 0)
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
