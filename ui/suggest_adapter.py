"""Candidate anchored terms for the Anchored terms tab, from `unlearn.suggest`."""

from __future__ import annotations

import json
from pathlib import Path

from ui.state import AppContext, Session
from unlearn.anchors import AnchorDictionary
from unlearn.data import read_text
from unlearn.suggest import suggest_by_frequency, suggest_by_reinforcement

REINFORCED_MAX_TOKENS = 20_000  # enough for a ranking, seconds on CPU for the demo model


def covered(anchors: AnchorDictionary) -> set[str]:
    """Keys and the single words of multi-word keys, case-folded (already in the dictionary)."""
    out = set()
    for key in anchors.entries:
        out.add(key.strip().casefold())
        out.update(w.casefold() for w in key.split())
    return out


def latest_reinforced(runs_dir: Path, baseline: str) -> Path | None:
    """The newest `runs_dir/*/reinforced` model trained from `baseline` (per its run.json)."""
    best = None
    for run_json in runs_dir.glob("*/run.json") if runs_dir.is_dir() else []:
        model = run_json.parent / "reinforced"
        if not (model / "config.json").is_file():
            continue
        try:
            config = json.loads(run_json.read_text(encoding="utf-8")).get("config", {})
        except (OSError, json.JSONDecodeError):
            continue
        if str(config.get("baseline")) != str(baseline):
            continue
        if best is None or model.stat().st_mtime > best.stat().st_mtime:
            best = model
    return best


def suggest_candidates(ctx: AppContext, session: Session, anchors: AnchorDictionary,
                       top_k: int = 40, use_reinforced: bool = False) -> list[list]:
    """`[[term, translations, score, why], ...]` for terms not covered by `anchors` yet.

    Terms far more frequent in the target text than in the general corpus (`target.txt` vs
    `general.txt` of the demo folder); with `use_reinforced`, also the words whose probability
    the reinforced model of the latest finetune run raises most over the left-hand model.
    Translations are left for the reviewer to fill in.
    """
    target = read_text(ctx.demo_dir / "target.txt")
    general = read_text(ctx.demo_dir / "general.txt")
    have = covered(anchors)
    cands = suggest_by_frequency(target, general, top_k=top_k * 3, exclude=anchors.keys())
    if use_reinforced:
        base = ctx.store.get(session.sides["original"] or "")
        reinforced = latest_reinforced(ctx.runs_dir, base.name)
        if reinforced is None:
            raise ValueError("no finetune run with a reinforced model of the left-hand model "
                             "yet: start one in the Finetune tab")
        rmodel = ctx.store.get(str(reinforced))
        cands += suggest_by_reinforcement(base.model, rmodel.model, base.tokenizer, target,
                                          top_k=top_k * 3, max_tokens=REINFORCED_MAX_TOKENS,
                                          exclude=anchors.keys())
    rows, seen = [], set()
    for c in sorted(cands, key=lambda c: -c.score):
        if c.term.casefold() in have or c.term.casefold() in seen:
            continue
        seen.add(c.term.casefold())
        rows.append([c.term, "", round(c.score, 2), c.reason])
    return rows[:top_k]
