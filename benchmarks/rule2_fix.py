"""What the rule-2 fix (possessive/plural forms forbid only whole words) changes on the demo.

    python benchmarks/rule2_fix.py                       # part 1: the demo dictionary
    python benchmarks/rule2_fix.py --labels-old OLD --reinforced DIR [--paragraphs 300]

Part 1 (this tree only): for every translation of `assets/demo/anchors.json`, the first tokens of
its possessive/plural forms that the fix no longer forbids (word pieces such as " Lu" of
" Lu|k|es" that are not also the first token of another form).

Part 2: labels of the first N target paragraphs (blocks of 256, paragraphs format, alphas 5 and
2, seed 0) computed by this tree and by an older one (`OLD`: a folder holding its `unlearn/`,
e.g. `mkdir OLD && git archive eec04bc unlearn | tar -x -C OLD`), with the committed baseline and
the reinforced model in `DIR`; prints how many trained positions differ. The README's figure used
a reinforced model made by `python -m unlearn reinforce --baseline assets/models/baseline
--target FIRST_300_PARAGRAPHS.txt --out DIR --epochs 3 --lr 3e-4 --block-size 256 --batch-size 16`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS_CODE = """
import json, sys, tempfile
from pathlib import Path
from unlearn.anchors import filter_redundant, load_anchors
from unlearn.label_runner import LabelConfig, compute_labels
from unlearn.models import load_model
root, reinforced, n, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
base, tok = load_model(str(root / "assets/models/baseline"))
reinf, _ = load_model(reinforced)
paras = [p for p in (root / "assets/demo/target.txt").read_text().split("\\n\\n") if p.strip()]
text = "\\n\\n".join(paras[:n]) + "\\n"
anchors, _ = filter_redundant(load_anchors(root / "assets/demo/anchors.json"))
cfg = LabelConfig(alphas=(5.0, 2.0), block_size=256, batch_size=8, text_format="paragraphs")
with tempfile.TemporaryDirectory() as d:
    ds = compute_labels(base, reinf, tok, text, anchors, cfg, Path(d) / "labels")
    json.dump({c: [list(r) for r in ds[c]] for c in ("labels_alpha_5", "labels_alpha_2")},
              open(out, "w"))
"""


def pieces_lifted() -> dict[str, list[str]]:
    """translation -> first tokens of its 's / s forms that are word pieces, not forbidden now."""
    from transformers import AutoTokenizer

    from unlearn.anchors import load_anchors
    from unlearn.translate import ARTICLES, AnchorMatcher

    tok = AutoTokenizer.from_pretrained(ROOT / "assets" / "models" / "tokenizer")
    matcher = AnchorMatcher(tok, load_anchors(ROOT / "assets" / "demo" / "anchors.json"))
    out = {}
    for trans in sorted(set(matcher.anchors.translations())):
        kept = matcher.first_tokens(trans)
        words = trans.split()
        while len(words) > 1 and words[0].casefold() in ARTICLES:  # as first_tokens does
            words = words[1:]
        lifted = set()
        for ctx in matcher.contexts:
            for suf in matcher.suffixes[1:]:
                ids = matcher.translation_ids(" ".join(words), ctx, suf)
                k = next((i for i, t in enumerate(ids) if matcher.token_text(t).strip()), None)
                if k is not None and ids[k] not in kept:
                    lifted.add(matcher.token_text(ids[k]))
        if lifted:
            out[trans] = sorted(lifted)
    return out


def labels_with(tree: Path, reinforced: str, paragraphs: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-c", LABELS_CODE, str(ROOT), reinforced,
                        str(paragraphs), f.name], env=env, check=True, cwd=tempfile.gettempdir())
        return json.loads(Path(f.name).read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels-old", type=Path, default=None, help="older tree (holds unlearn/)")
    p.add_argument("--reinforced", default=None, help="reinforced demo model folder")
    p.add_argument("--paragraphs", type=int, default=300)
    args = p.parse_args()
    lifted = pieces_lifted()
    from unlearn.anchors import load_anchors

    total = len(set(load_anchors(ROOT / "assets" / "demo" / "anchors.json").translations()))
    print(f"{len(lifted)} of {total} translations no longer forbid a word piece:")
    for trans, toks in lifted.items():
        print(f"  {trans}: {toks}")
    if args.labels_old is None:
        return 0
    if not args.reinforced:
        p.error("--labels-old needs --reinforced DIR")
    old = labels_with(args.labels_old.resolve(), args.reinforced, args.paragraphs)
    new = labels_with(ROOT, args.reinforced, args.paragraphs)
    for col in old:
        pairs = [(a, b) for r, s in zip(old[col], new[col], strict=True)
                 for a, b in zip(r, s, strict=True) if a != -100 or b != -100]
        changed = sum(a != b for a, b in pairs)
        print(f"{col}: {changed} of {len(pairs)} trained positions differ "
              f"({len(old[col])} blocks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
