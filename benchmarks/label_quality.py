"""How good are the generic labels? Measured against the demo's reference model (issue 4).

    python benchmarks/label_quality.py --reinforced runs/whp-demo/reinforced [--blocks 12]

For sampled blocks of the target text it computes the labels the WHP runner would (the library's
`translate_block`, `reindex`, rule 2 and `generic_labels`) and compares them, position by
position, with what the baseline and the reference (which never saw the target) predict on the
original text:

* keep: where the reference agrees with the baseline (a generic prediction), how often the label
  is that same token (collateral damage = 1 - keep);
* forget: where the reference disagrees with the baseline (target knowledge or style), how often
  the label differs from the baseline;
* keep by half of the block (translation drift along a block);
* name the target: the share of trained labels that are the first token of one of the target's
  own one-word anchored terms (what rule 3, our extension, removes).

Variants: Eq. 1 in log-probability and raw-logit space, with rule 3, alpha 0 (the translated
baseline alone), with and without rule 2. Also prints how far the reinforced model's rows sit
above the translated baseline's, and how often Eq. 1's ReLU fires on raw logits.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn.anchors import choose_translations, filter_redundant, load_anchors  # noqa: E402
from unlearn.data import encode_text, resolve_text_format  # noqa: E402
from unlearn.label_runner import split_blocks  # noqa: E402
from unlearn.labels import (  # noqa: E402
    apply_forbidden,
    forbidden_mask_from_lists,
    generic_labels,
    reindex,
)
from unlearn.models import load_model  # noqa: E402
from unlearn.translate import get_matcher, translate_block  # noqa: E402

MODELS = ROOT / "assets" / "models"
DEMO = ROOT / "assets" / "demo"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reinforced", required=True, help="reinforced model folder")
    p.add_argument("--blocks", type=int, default=12, help="blocks sampled (seeded)")
    p.add_argument("--block-size", type=int, default=512)
    p.add_argument("--alpha", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--text-format", choices=("auto", "text", "paragraphs"), default="auto",
                   help="how the target becomes tokens (auto: as the demo models were trained)")
    args = p.parse_args(argv)
    if args.blocks < 1 or args.block_size < 8:
        p.error("--blocks must be >= 1 and --block-size >= 8")
    torch.manual_seed(0)
    base, tok = load_model(str(MODELS / "baseline"))
    ref, _ = load_model(str(MODELS / "reference"))
    reinf, _ = load_model(args.reinforced)
    anchors, _ = filter_redundant(load_anchors(DEMO / "anchors.json"))
    matcher = get_matcher(tok, anchors)
    fmt = resolve_text_format(args.text_format, MODELS / "baseline")
    ids = encode_text(tok, (DEMO / "target.txt").read_text(encoding="utf-8"), fmt)
    ranges = split_blocks(ids, args.block_size - 1, matcher)
    picked = random.Random(args.seed).sample(range(len(ranges)), min(args.blocks, len(ranges)))
    half = args.block_size // 2
    variants = {"logprob": ("logprob", (1, 2), args.alpha),
                "logprob + rule 3": ("logprob", (1, 2, 3), args.alpha),
                "logit": ("logit", (1, 2), args.alpha),
                "translated baseline (alpha 0)": ("logprob", (1, 2), 0.0),
                "logprob, rule 1 only": ("logprob", (1,), args.alpha),
                "translated baseline, rule 1 only": ("logprob", (1,), 0.0)}
    tally = {name: [0] * 10 for name in variants}
    key_tokens = torch.tensor(matcher.key_first_tokens(), dtype=torch.long)
    shift, fired, rows = 0.0, 0.0, 0
    with torch.inference_mode():
        for k in picked:
            a, b = ranges[k]
            block = ([tok.bos_token_id] if ids[a] != tok.bos_token_id else []) + ids[a:b]
            choice = choose_translations(matcher.anchors, random.Random(f"0:{k}"))
            x = torch.tensor([block])
            v_r = reinf(input_ids=x).logits[0].float()
            p_base = base(input_ids=x).logits[0].argmax(-1)
            p_ref = ref(input_ids=x).logits[0].argmax(-1)
            pos = torch.arange(len(block))
            for name, (space, rules, alpha) in variants.items():
                tr = translate_block(block, tok, matcher, choice, rules=rules)
                mapping = torch.tensor(tr.mapping)
                mapping[-1] = -1
                v_t = base(input_ids=torch.tensor([tr.translated_ids])).logits[0].float()
                v_b = apply_forbidden(reindex(v_t, mapping),
                                      forbidden_mask_from_lists(tr.forbidden, v_t.shape[-1]))
                if name == "logprob":
                    keep_rows = mapping >= 0
                    d = (v_r - v_b)[keep_rows]
                    shift += float(d.mean(-1).sum())
                    fired += float((d > 0).float().mean(-1).sum())
                    rows += int(keep_rows.sum())
                label = generic_labels(v_b, v_r, mapping, [alpha], space=space)[alpha]
                pred = label[1:]  # prediction made at position t, for t < T - 1
                trained = mapping[:-1] >= 0
                same = trained & (p_base[:-1] == p_ref[:-1])
                diff = trained & (p_base[:-1] != p_ref[:-1])
                first = pos[:-1] < half
                c = tally[name]
                c[0] += int((pred == p_base[:-1])[same].sum())
                c[1] += int(same.sum())
                c[2] += int((pred != p_base[:-1])[diff].sum())
                c[3] += int(diff.sum())
                c[4] += int((pred == p_base[:-1])[same & first].sum())
                c[5] += int((same & first).sum())
                c[6] += int((pred == p_base[:-1])[same & ~first].sum())
                c[7] += int((same & ~first).sum())
                c[8] += int(torch.isin(pred, key_tokens)[trained].sum())
                c[9] += int(trained.sum())
    print(f"{len(picked)} blocks of {args.block_size} tokens, alpha {args.alpha:g}, "
          f"text format {fmt}")
    print(f"reinforced minus translated baseline, mean over a row: {shift / rows:.3f} logits; "
          f"ReLU fires on {fired / rows:.1%} of raw logits")
    print(f"\n{'labels':<34}{'keep':>8}{'forget':>8}{'keep 1st half':>15}{'keep 2nd half':>15}"
          f"{'name the target':>17}")
    for name, c in tally.items():
        r = [c[i] / max(c[i + 1], 1) for i in (0, 2, 4, 6, 8)]
        print(f"{name:<34}{r[0]:>8.3f}{r[1]:>8.3f}{r[2]:>15.3f}{r[3]:>15.3f}{r[4]:>17.4f}")
    print(f"\n(keep: n={tally['logprob'][1]} generic positions; "
          f"forget: n={tally['logprob'][3]} positions where the reference disagrees)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
