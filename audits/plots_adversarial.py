"""Plotly figures of the adversarial section: relearning and in-context curves, logit-lens
lines and heat maps, linear-probe accuracy, many-way choice and framing bars.

Only figures from report data (`report["adversarial"]`); no model, no files.
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from audits.plots import PALETTE


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def relearn_curves(relearn: Mapping[str, Mapping]) -> go.Figure:
    """Answer probability over finetune steps per model: held-out (solid), relearned (dashed)."""
    fig = go.Figure()
    for i, (name, r) in enumerate(relearn.items()):
        fig.add_scatter(x=r["steps"], y=r["heldout"], mode="lines+markers", name=f"{name} held-out",
                        line={"color": _color(i)}, legendgroup=name)
        fig.add_scatter(x=r["steps"], y=r["trained"], mode="lines+markers",
                        name=f"{name} relearned", line={"color": _color(i), "dash": "dash"},
                        legendgroup=name)
    fig.update_layout(title="Finetune relearning: answer probability after N steps",
                      xaxis_title="finetune steps", yaxis_title="mean answer probability")
    return fig


def icl_curves(icl: Mapping[str, Mapping]) -> go.Figure:
    """Answer probability against the number of true context sentences, per model."""
    fig = go.Figure()
    for i, (name, r) in enumerate(icl.items()):
        xs = sorted(r["curve"], key=int)
        fig.add_scatter(x=[int(x) for x in xs], y=[r["curve"][x]["familiarity"] for x in xs],
                        mode="lines+markers", name=name, line={"color": _color(i)})
    fig.update_layout(title="In-context relearning", xaxis_title="true sentences in context (N)",
                      yaxis_title="mean answer probability")
    return fig


def lens_lines(lens: Mapping[str, Mapping]) -> go.Figure:
    """Mean answer probability read through the logit lens after each layer, per model."""
    fig = go.Figure()
    for i, (name, r) in enumerate(lens.items()):
        fig.add_scatter(x=list(range(1, len(r["mean"]) + 1)), y=r["mean"], mode="lines+markers",
                        name=name, line={"color": _color(i)})
    fig.update_layout(title="Logit lens: answer probability per layer", xaxis_title="layer",
                      yaxis_title="mean answer probability", xaxis={"dtick": 1})
    return fig


def lens_heatmap(name: str, r: Mapping) -> go.Figure:
    """Layer x probe heat map of one model's answer probability through the logit lens."""
    fig = go.Figure(go.Heatmap(z=r["probs"], x=r["ids"],
                               y=[f"layer {i}" for i in range(1, len(r["probs"]) + 1)],
                               colorscale="Viridis", zmin=0, zmax=1,
                               colorbar={"title": "p(answer)"}))
    fig.update_layout(title=f"Logit lens heat map: {name}", xaxis_title="probe",
                      height=260 + 20 * len(r["probs"]))
    return fig


def probe_lines(probe: Mapping[str, Mapping]) -> go.Figure:
    """Cross-validated accuracy of the per-layer true/false linear probe, per model."""
    fig = go.Figure()
    for i, (name, r) in enumerate(probe.items()):
        fig.add_scatter(x=list(range(1, len(r["accuracy"]) + 1)), y=r["accuracy"],
                        mode="lines+markers", name=name, line={"color": _color(i)})
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(title="Linear probe on trivia statements: accuracy per layer",
                      xaxis_title="layer", yaxis_title="accuracy", xaxis={"dtick": 1})
    return fig


def kway_bars(kway: Mapping[str, Mapping]) -> go.Figure:
    """Many-way choice accuracy per k and model, with chance as a marker."""
    fig = go.Figure()
    ks: list[str] = []
    for r in kway.values():
        ks += [k for k in r["per_k"] if k not in ks]
    label = {k: ("all" if k == "0" else f"k={k}") for k in ks}
    for i, (name, r) in enumerate(kway.items()):
        fig.add_bar(name=name, x=[label[k] for k in ks],
                    y=[(r["per_k"].get(k) or {}).get("accuracy") for k in ks],
                    marker_color=_color(i))
    first = next(iter(kway.values()), {"per_k": {}})
    fig.add_scatter(x=[label[k] for k in ks], y=[(first["per_k"].get(k) or {}).get("chance")
                                                 for k in ks],
                    mode="markers", marker={"symbol": "line-ew-open", "size": 40,
                                            "color": "black"}, name="chance")
    fig.update_layout(barmode="group", title="Many-way choice among canon names of one kind",
                      yaxis_title="accuracy")
    return fig


def template_bars(framing: Mapping[str, Mapping], title: str) -> go.Figure:
    """Answer probability per template (framing or instruction) and model."""
    fig = go.Figure()
    tids: list[str] = []
    for r in framing.values():
        tids += [t for t in r["per_template"] if t not in tids]
    for i, (name, r) in enumerate(framing.items()):
        fig.add_bar(name=name, x=tids, y=[(r["per_template"].get(t) or {}).get("familiarity")
                                          for t in tids], marker_color=_color(i))
    fig.update_layout(barmode="group", title=title, yaxis_title="mean answer probability")
    return fig
