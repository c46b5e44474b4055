"""Plotly figures from audit data: top-k next tokens, tracked tokens over steps, score summary.

Only figures here: no model, no files written (except `read_evals`, which reads one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# headline scores that live on a 0-1 scale; completion familiarity (0-5) and perplexity get
# panels of their own so that their scales do not flatten the others
UNIT_SCORES = ("probability_familiarity", "probability_top1", "trivia_accuracy",
               "verbatim_rougeL", "general_accuracy", "general_cloze_accuracy",
               "neighbour_probability_familiarity",
               "neighbour_trivia_accuracy", "forget_quality")
FAMILIARITY_SCORES = ("completion_familiarity", "neighbour_completion_familiarity")
PERPLEXITY_SCORES = ("general_perplexity",)
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")

def _show(token: str) -> str:
    # make spaces and newlines visible on the axis: " Pip" -> "␣Pip"
    return token.replace(" ", "␣").replace("\n", "⏎") or "∅"


def topk_bars(distributions: Mapping[str, Sequence[tuple[str, float]]], prompt: str = "",
              max_tokens: int = 15, answer: str | None = None,
              answer_probs: Mapping[str, float] | None = None) -> go.Figure:
    """Grouped bars: for each model (one trace), the probability of each top-k token.

    Tokens are the union over models, ordered by their highest probability; a model's bar is 0
    for a token outside its own top-k. `answer` / `answer_probs` (model -> probability of the
    expected answer) are shown in the title.
    """
    best: dict[str, float] = {}
    for dist in distributions.values():
        for tok, p in dist:
            best[tok] = max(best.get(tok, 0.0), float(p))
    tokens = sorted(best, key=lambda t: -best[t])[:max_tokens]
    fig = go.Figure()
    for name, dist in distributions.items():
        probs = dict(dist)
        fig.add_bar(name=name, x=[_show(t) for t in tokens],
                    y=[float(probs.get(t, 0.0)) for t in tokens])
    title = f"Next token after: {prompt!r}" if prompt else "Next-token distribution"
    if answer is not None:
        probs_txt = ", ".join(f"{n} {p:.3g}" for n, p in (answer_probs or {}).items())
        title += f"<br><sub>answer {answer!r}: {probs_txt}</sub>"
    fig.update_layout(barmode="group", title=title, xaxis_title="token",
                      yaxis_title="probability", legend_title="model")
    return fig


def read_evals(path: str | Path) -> list[dict]:
    """Read a finetune's `evals.jsonl` (one JSON object per line, each with a `step`)."""
    records = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int | float):
            raise ValueError(f"{path}:{lineno}: each record needs a numeric 'step'")
        records.append(rec)
    return sorted(records, key=lambda r: r["step"])


def tracked_tokens(records: Sequence[Mapping]) -> go.Figure:
    """Probability of each tracked (prompt, token) against finetune step: one line per pair."""
    lines: dict[tuple[str, str], tuple[list, list]] = {}
    for rec in sorted(records, key=lambda r: r["step"]):
        for t in rec.get("tracked", []) or []:
            xs, ys = lines.setdefault((t["prompt"], t["token"]), ([], []))
            xs.append(rec["step"])
            ys.append(float(t["prob"]))
    fig = go.Figure()
    for (prompt, token), (xs, ys) in lines.items():
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=f"{prompt} →{_show(token)}")
    fig.update_layout(title="Probability of tracked tokens during finetuning",
                      xaxis_title="step", yaxis_title="probability", legend_title="prompt → token")
    return fig


def scores_summary(scores: Mapping[str, Mapping[str, float | None]]) -> go.Figure:
    """Headline scores per model (one colour per model): 0-1 scores, familiarity, perplexity."""
    panels = (UNIT_SCORES, FAMILIARITY_SCORES, PERPLEXITY_SCORES)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.64, 0.22, 0.14], horizontal_spacing=0.06,
                        subplot_titles=("scores on a 0-1 scale", "completion familiarity (0-5)",
                                        "perplexity"))
    for i, (name, sc) in enumerate(scores.items()):
        color = PALETTE[i % len(PALETTE)]
        for col, keys in enumerate(panels, start=1):
            present = [k for k in keys if sc.get(k) is not None]
            fig.add_bar(name=name, x=present, y=[float(sc[k]) for k in present], row=1, col=col,
                        marker_color=color, legendgroup=name, showlegend=col == 1)
    fig.update_layout(barmode="group", title="Headline scores per model", legend_title="model",
                      height=520, margin={"b": 160})
    return fig
