"""Measure ERASE and SISA unit costs on a real model and task (seconds on this machine)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np

from unlearn.erase.cost import UnitCosts
from unlearn.erase.embeddings import EmbeddingConfig, embed_texts
from unlearn.erase.evaluate import continuation_logprobs
from unlearn.erase.qkmeans import QKMeansConfig, delete, fit
from unlearn.erase.sisa import SISAConfig, train_sisa
from unlearn.erase.task import Task


def _query_seconds(model, tokenizer, task: Task, shots, n: int) -> float:
    contexts = [task.context(shots, q.input) for q in task.test[:n]]
    start = time.perf_counter()
    continuation_logprobs(model, tokenizer, contexts, task.continuations(), batch_size=1)
    return (time.perf_counter() - start) / len(contexts)


def measure_unit_costs(model, tokenizer, task: Task, qconfig: QKMeansConfig,
                       econfig: EmbeddingConfig, sisa_config: SISAConfig,
                       deletions: int = 100, queries: int = 32,
                       on_progress: Callable[[str], None] | None = None) -> tuple[UnitCosts, dict]:
    """Unit costs and the raw measurements behind them.

    Selection = embedding the training split (no cache) + one Q-k-means fit; deletion costs come
    from `deletions` random single deletions; query costs are per query at batch size 1.
    """
    say = on_progress or (lambda _m: None)
    texts, ids = [ex.input for ex in task.train], [ex.id for ex in task.train]
    say("embedding the training split")
    start = time.perf_counter()
    x = embed_texts(texts, econfig, model, tokenizer)
    state = fit(x, ids, qconfig)
    select = time.perf_counter() - start
    say(f"{deletions} deletions")
    trial = copy.deepcopy(state)
    rng = np.random.default_rng(qconfig.seed)
    records = [delete(trial, ids[i]) for i in rng.choice(len(ids), deletions, replace=False)]
    cert = [r.seconds for r in records if r.action == "certified"]
    reco = [r.seconds for r in records if r.action == "recompute"]
    if not reco:  # time a recompute anyway so the unit cost exists
        start = time.perf_counter()
        fit(x, ids, qconfig)
        reco = [time.perf_counter() - start]
    say("query costs")
    shots = [task.train[ids.index(i)] for i in state.prompt_ids()]
    icl_query = _query_seconds(model, tokenizer, task, shots, queries)
    zero_query = _query_seconds(model, tokenizer, task, [], queries)
    say("one SISA shard finetune")
    one = SISAConfig(**{**sisa_config.__dict__, "shards": 1})
    sub = copy.copy(task)
    sub.train = task.train[: len(task.train) // sisa_config.shards]
    sisa = train_sisa(copy.deepcopy(model), tokenizer, sub, one)
    units = UnitCosts(select=select, certify=float(np.mean(cert)) if cert else 0.0,
                      recompute=float(np.mean(reco)),
                      recompute_rate=len([r for r in records if r.action == "recompute"])
                      / len(records),
                      icl_query=icl_query, shard_train=sisa.train_seconds[0],
                      shards=sisa_config.shards,
                      sisa_query=zero_query * sisa_config.shards,
                      source=f"measured on this machine ({task.name}, n={len(ids)})")
    raw = {"deletions": len(records), "certified": len(cert), "recomputed": len(reco),
           "zero_shot_query": zero_query, "shard_examples": len(sub.train)}
    return units, raw
