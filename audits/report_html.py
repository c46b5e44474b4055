"""Render a report dict (see `Report.to_dict`) as one self-contained HTML page."""

from __future__ import annotations

import html
import json
from typing import Any

from audits.plots import scores_summary, topk_bars
from audits.report_sections import adversarial_section, forget_section

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3}
td.l,th.l{text-align:left}
details{margin:.3em 0}
summary{cursor:pointer;font-weight:600}
pre{background:#f7f7f7;padding:1em;overflow:auto}
.note{color:#666}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "✓" if v else "✗"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return html.escape(json.dumps(v, ensure_ascii=False)[:300])
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(v)}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(fig) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})


def _items_table(items: list[dict]) -> str:
    if not items:
        return '<p class="note">no items</p>'
    cols = list(items[0])
    return _table(cols, [[it.get(c) for c in cols] for it in items], left=len(cols))


def _per_item(data: dict) -> str:
    parts = []
    for name, m in data["models"].items():
        for measure, res in m["results"].items():
            if isinstance(res, dict) and isinstance(res.get("items"), list):
                parts.append(f"<details><summary>{html.escape(name)} · {html.escape(measure)} "
                             f"({len(res['items'])} items)</summary>"
                             f"{_items_table(res['items'])}</details>")
            elif measure == "lm_eval":
                rows = [[t, json.dumps(v)] for t, v in res.get("tasks", {}).items()]
                parts.append(f"<details open><summary>{html.escape(name)} · lm-eval</summary>"
                             f"{_table(['task', 'metrics'], rows, 2)}</details>")
    return "".join(parts)


def render_html(data: dict) -> str:
    """The report page: scores, neighbour deltas, forget quality, plots, per-item tables."""
    from plotly.offline import get_plotlyjs

    names = list(data["models"])
    keys: list[str] = []
    for m in data["models"].values():
        keys += [k for k in m["scores"] if k not in keys]
    scores_rows = [[k] + [data["models"][n]["scores"].get(k) for n in names] for k in keys]
    delta_keys = sorted({k for d in data["neighbour_deltas"].values() for k in d})
    delta_rows = [[k] + [data["neighbour_deltas"].get(n, {}).get(k) for n in names]
                  for k in delta_keys]
    fq_rows = [[n, q["statistic"], q["pvalue"], q["n"]]
               for n, q in data["forget_quality"].items()]
    figs = [_figure(scores_summary({n: m["scores"] for n, m in data["models"].items()}))]
    for t in data["topk"]:
        figs.append(_figure(topk_bars({n: [tuple(x) for x in d] for n, d in t["models"].items()},
                                      t["prompt"], answer=t["answer"],
                                      answer_probs=t.get("answer_probs"))))
    suite = data["suite"]
    skipped = "".join(f"<li>{html.escape(s)}</li>" for s in data["skipped"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unlearning audit report</title>
<style>{CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>Unlearning audit report</h1>
<p>Suite <b>{html.escape(str(suite["name"]))}</b> · models {html.escape(", ".join(names))} ·
seed {data["seed"]} · created {html.escape(data["created"])} · {data["seconds"]:.1f} s</p>
<h2>Headline scores</h2>
{_table(["score", *names], scores_rows)}
<h2>Neighbour side effects (change vs <i>{html.escape(data["baseline"])}</i>)</h2>
{_table(["score", *names], delta_rows)}
<h2>Forget quality vs <i>{html.escape(str(data["reference"]))}</i></h2>
<p class="note">Two-sample KS test between a model's answer probabilities on the target
probability probes and the reference's; forget quality = p-value (high: indistinguishable).</p>
{_table(["model", "KS statistic", "p-value (forget quality)", "n"], fq_rows)
 if fq_rows else '<p class="note">no reference model</p>'}
{forget_section(data, _table)}
{adversarial_section(data, _table)}
<h2>Plots</h2>
{"".join(f'<div class="fig">{f}</div>' for f in figs)}
<h2>Per-item results</h2>
{_per_item(data)}
<h2>Run</h2>
{f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else ""}
<details><summary>suite</summary><pre>{html.escape(json.dumps(suite, indent=1))}</pre></details>
<details><summary>config</summary><pre>{html.escape(json.dumps(data["config"], indent=1))}</pre>
</details>
<details><summary>versions</summary><pre>{html.escape(json.dumps(data["versions"], indent=1))}
</pre></details>
</body></html>
"""
