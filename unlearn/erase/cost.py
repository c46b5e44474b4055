"""Holistic cost of adapting a model: in-context (ERASE) against finetuning (SISA shards).

total_ICL(Q, R)  = select + R * (p * recompute + (1 - p) * certify) + Q * query_with_k_shots
total_SISA(Q, R) = S * shard_finetune + R * shard_finetune + Q * S * query_zero_shot
for Q queries and R deletion requests. Unit costs are either measured on this machine (seconds of
the demo model) or, for a Llama-2-7B-sized model, estimated from FLOPs (stated as an estimate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class UnitCosts:
    """Seconds per unit of work. `source` says whether they were measured or estimated."""

    select: float  # embed the training set + run Q-k-means once
    certify: float  # one certified deletion
    recompute: float  # one recomputed deletion (Q-k-means again on stored embeddings)
    recompute_rate: float  # fraction of deletions that recompute
    icl_query: float  # one query with the k-shot prompt
    shard_train: float  # one LoRA finetune of one shard
    shards: int  # S
    sisa_query: float  # one query through all S shard models
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


def deletion_cost(u: UnitCosts) -> float:
    return u.recompute_rate * u.recompute + (1 - u.recompute_rate) * u.certify


def icl_total(u: UnitCosts, queries, deletions):
    return u.select + np.asarray(deletions) * deletion_cost(u) + np.asarray(queries) * u.icl_query


def sisa_total(u: UnitCosts, queries, deletions):
    return (u.shards * u.shard_train + np.asarray(deletions) * u.shard_train
            + np.asarray(queries) * u.sisa_query)


def break_even_queries(u: UnitCosts, deletions: float) -> float | None:
    """Queries at which both totals are equal for `deletions` requests.

    ICL is cheaper below it when its per-query cost is the higher one (the usual case: longer
    prompts). None when one side is cheaper at every query count.
    """
    fixed = sisa_total(u, 0, deletions) - icl_total(u, 0, deletions)  # SISA's extra fixed cost
    per_query = u.icl_query - u.sisa_query  # ICL's extra per-query cost
    if per_query == 0:
        return None
    q = fixed / per_query
    return float(q) if q > 0 else None


def summary(u: UnitCosts, deletion_counts=(0, 10, 100, 1000, 10_000)) -> dict:
    return {"unit_costs": u.as_dict(), "deletion_cost": deletion_cost(u),
            "break_even_queries": {str(r): break_even_queries(u, r) for r in deletion_counts}}


def llama2_7b_estimate(k: int, tokens_per_example: float, n_train: int, shards: int,
                       epochs: int, emb_dim: int = 16, iters: int = 10,
                       recompute_rate: float = 0.0, flops_per_second: float = 1.25e14,
                       params: float = 6.74e9) -> UnitCosts:
    """Unit costs of a Llama-2-7B-sized model from FLOP counts (an estimate, not a measurement).

    Forward = 2 P FLOPs per token; a LoRA training step ~ 4 P per token (forward plus the backward
    pass through the activations; the adapter's weight gradients are negligible).
    flops_per_second: one A100 at 312 TFLOP/s bf16 peak and 40% utilisation.
    """
    fwd = 2 * params / flops_per_second  # seconds per token
    kmeans = 2 * iters * n_train * k * emb_dim / flops_per_second
    return UnitCosts(
        select=fwd * n_train * tokens_per_example + kmeans,
        certify=2 * iters * (k + 1) * emb_dim / flops_per_second,
        recompute=kmeans, recompute_rate=recompute_rate,
        icl_query=fwd * (k + 1) * tokens_per_example,
        shard_train=2 * fwd * epochs * (n_train / shards) * tokens_per_example,
        shards=shards, sisa_query=shards * fwd * tokens_per_example,
        source=f"estimate from FLOPs: {params / 1e9:.2f}B parameters at "
               f"{flops_per_second / 1e12:.0f} TFLOP/s (Llama-2-7B on one A100 at 40% of its "
               f"bf16 peak by default)")


def cost_figure(u: UnitCosts, max_queries: float = 1e7, max_deletions: float = 1e5):
    """Plotly heatmap of log10(SISA total / ICL total) over (deletions, queries), log axes.

    Positive (blue) = in-context learning is cheaper; the black line is the break-even.
    """
    import plotly.graph_objects as go

    deletions = np.logspace(0, np.log10(max_deletions), 60)
    queries = np.logspace(0, np.log10(max_queries), 60)
    r, q = np.meshgrid(deletions, queries)  # (Q, R)
    ratio = np.log10(sisa_total(u, q, r) / icl_total(u, q, r))
    line = [break_even_queries(u, d) for d in deletions]
    fig = go.Figure(go.Heatmap(x=deletions, y=queries, z=ratio, colorscale="RdBu", zmid=0,
                               colorbar={"title": "log10 SISA/ICL"}))
    fig.add_trace(go.Scatter(x=deletions, y=[v if v is not None else np.nan for v in line],
                             mode="lines", line={"color": "black"}, name="break-even"))
    fig.update_xaxes(type="log", title="deletion requests")
    fig.update_yaxes(type="log", title="queries", range=[0, np.log10(max_queries)])
    fig.update_layout(title=f"Where in-context learning is cheaper (blue)<br><sup>{u.source}</sup>")
    return fig
