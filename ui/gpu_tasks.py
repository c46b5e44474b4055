"""The GPU side of the app: every call that runs a model is a module-level `@gpu` entry point.

Handlers pass plain data only (a store key, model names, a prompt, settings dataclasses, probe
dataclasses, folder paths as strings); the models are looked up inside the call in the
module-level `STORES` registry, as the ZeroGPU docs prescribe (models live in module-level state
of the main process; the GPU worker inherits them). Results are plain data too. Long tasks are
generators that yield `("progress", fraction, message)` and finally `("result", value)`, so the
handler can drive a `gr.Progress` on its side of the process boundary (`drain`).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ui.gpu import gpu
from ui.limits import (
    MAX_CONTINUATIONS,
    MAX_PROBES,
    LimitError,
    check_prompt_chars,
    check_prompt_tokens,
    check_text,
    context_length,
)
from ui.progress import progress_callback
from ui.store import Loaded, ModelStore
from ui.streaming import GenerationSettings, StreamStats, sample_k, stream_side_by_side
from unlearn.runtime import Progress

# store key -> the server's model store (weak: a store goes when its app context goes)
STORES: weakref.WeakValueDictionary[str, ModelStore] = weakref.WeakValueDictionary()
_CANCELS: dict[str, threading.Event] = {}  # run id -> cancel flag of a running stream
_CANCELS_LOCK = threading.Lock()


def register_store(store: ModelStore) -> str:
    """Make `store` reachable from GPU calls; returns the key handlers pass to them."""
    key = uuid.uuid4().hex
    STORES[key] = store
    return key


def _models(store_key: str, names: dict[str, str]) -> dict[str, Loaded]:
    store = STORES[store_key]
    return {role: store.get(name) for role, name in names.items()}


# ---------------------------------------------------------------- Side by side

@gpu
def stream_pair(store_key: str, names: list[str], prompt: str, settings: GenerationSettings,
                run_id: str) -> Iterator[dict[str, Any]]:
    """Both models at once: yields `{"texts": (left, right), "errors": [None | message, ...]}`.

    `cancel_stream(run_id)` stops both at their next token when it runs in the same process;
    closing this generator (Stop, client gone) does too.
    """
    models = _models(store_key, {str(i): n for i, n in enumerate(names)})
    cancel = threading.Event()
    with _CANCELS_LOCK:
        _CANCELS[run_id] = cancel
    stats = StreamStats()
    stream = stream_side_by_side([(m.model, m.tokenizer) for m in models.values()], prompt,
                                 settings, cancel, stats)
    try:
        for texts in stream:
            yield {"texts": tuple(texts), "errors": list(stats.errors)}
    finally:
        stream.close()  # closed early: sets the cancel flag, both generate calls stop
        with _CANCELS_LOCK:
            _CANCELS.pop(run_id, None)


@gpu(duration=180)
def sample_pair(store_key: str, names: list[str], prompt: str, settings: GenerationSettings,
                k: int, run_id: str = "") -> Iterator[tuple]:
    """`k` samples of every model with seeds `settings.seed` .. `settings.seed + k - 1` (both
    models at once per seed, as Generate does, so sample i is what Generate gives with seed
    s+i). Progress events, then `("result", {"seeds": [...], "texts": [[per sample] per model],
    "stopped": bool})`. `cancel_stream(run_id)` stops after the running sample."""
    cancel = threading.Event()
    if run_id:
        with _CANCELS_LOCK:
            _CANCELS[run_id] = cancel

    def work(on_progress):
        models = _models(store_key, {str(i): n for i, n in enumerate(names)})
        seeds, texts = sample_k([(m.model, m.tokenizer) for m in models.values()], prompt,
                                settings, int(k), cancel, progress_callback(on_progress, ""))
        return {"seeds": seeds, "texts": texts, "stopped": cancel.is_set()}

    try:
        yield from _with_progress(work)
    finally:
        if run_id:
            with _CANCELS_LOCK:
                _CANCELS.pop(run_id, None)


def cancel_stream(run_id: str | None) -> bool:
    """Set the cancel flag of the stream `run_id` if it runs in this process."""
    with _CANCELS_LOCK:
        event = _CANCELS.get(run_id or "")
    if event is None:
        return False
    event.set()
    return True


# ---------------------------------------------------------------- progress across processes

def _with_progress(work: Callable[[Callable], Any]) -> Iterator[tuple]:
    """Run `work(on_progress)` in a thread; yield its progress events, then its result.

    `on_progress` has the `gr.Progress` signature; tasks feed it their `unlearn.runtime.Progress`
    events through `ui.progress.progress_callback` (the one adapter)."""
    events: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def on_progress(fraction: float, desc: str = "") -> None:  # the gr.Progress signature
        events.put(("progress", float(fraction), str(desc)))

    def main() -> None:
        try:
            box["result"] = work(on_progress)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            events.put(None)

    thread = threading.Thread(target=main, daemon=True, name="gpu-task")
    thread.start()
    while (event := events.get()) is not None:
        yield event
    thread.join()
    if "error" in box:
        raise box["error"]
    yield ("result", box["result"])


def drain(events: Iterator[tuple], progress=None) -> Any:
    """Handler side: feed progress events to a `gr.Progress`, return the final result."""
    result = None
    for event in events:
        if event[0] == "progress" and progress is not None:
            with contextlib.suppress(Exception):  # progress is cosmetic
                progress(event[1], desc=event[2])
        elif event[0] == "result":
            result = event[1]
    return result


# ---------------------------------------------------------------- Completion probes

def load_judge(demo_dir: str | Path):
    """The offline rule judge from the suite's term lists (world.json, and anchors.json)."""
    from audits.errors import AuditError
    from audits.judges import RuleJudge

    demo_dir = Path(demo_dir)
    world_path = demo_dir / "world.json"
    if not world_path.is_file():
        raise AuditError(f"{world_path} is missing: the rule judge needs the world's term lists")
    world = json.loads(world_path.read_text(encoding="utf-8"))
    anchors_path = demo_dir / "anchors.json"
    anchors = (json.loads(anchors_path.read_text(encoding="utf-8"))
               if anchors_path.is_file() else None)
    return RuleJudge.from_world(world, anchors)


def check_probe_prompts(models: dict[str, Loaded], prompts: list[str], new_tokens: int) -> None:
    """Raise `LimitError` naming the first probe that does not fit a model's context."""
    if len(prompts) > MAX_PROBES:
        raise LimitError(f"At most {MAX_PROBES} probes per run, got {len(prompts)}")
    for m in models.values():
        context = context_length(m.model)
        for i, prompt in enumerate(prompts):
            try:
                check_prompt_chars(prompt, context, new_tokens)
                check_prompt_tokens(len(m.tokenizer(prompt)["input_ids"]), context, new_tokens)
            except LimitError as exc:
                raise LimitError(f"Probe {i + 1}: {exc}") from None


@gpu(duration=180)
def completion_probes(store_key: str, names: dict[str, str], probes: Sequence, demo_dir: str,
                      config) -> Iterator[tuple]:
    """Sample and grade `probes` on every named model: result `{role: CompletionResult}`."""
    from audits.familiarity import completion_familiarity

    def work(on_progress):
        judge = load_judge(demo_dir)
        models = _models(store_key, names)
        check_probe_prompts(models, [p.prompt for p in probes], config.generation.max_new_tokens)
        n = len(models)
        return {role: completion_familiarity(m.model, m.tokenizer, list(probes), judge, config,
                                             on_progress=progress_callback(on_progress, role, i / n,
                                                                       1 / n))
                for i, (role, m) in enumerate(models.items())}

    yield from _with_progress(work)


# ---------------------------------------------------------------- Token probabilities

@gpu
def token_distributions(store_key: str, names: dict[str, str], prompt: str, k: int,
                        continuations: list[str]) -> dict[str, dict]:
    """`{"topk": {role: [(token, p), ...]}, "probs": {role: [p per continuation]}}`."""
    from audits.scoring import next_token_topk, token_probs

    models = _models(store_key, names)
    check_scoring_inputs(models, prompt, int(k), continuations)
    topk = {role: [(str(t), float(p)) for t, p in
                   next_token_topk(m.model, m.tokenizer, [prompt], int(k))[0]]
            for role, m in models.items()}
    probs = ({role: [float(p) for p in token_probs(m.model, m.tokenizer, prompt, continuations)]
              for role, m in models.items()} if continuations else {})
    return {"topk": topk, "probs": probs}


def check_scoring_inputs(models: dict[str, Loaded], prompt: str, k: int,
                         continuations: list[str]) -> None:
    """Raise `LimitError` unless prompt + longest continuation fits every model's context."""
    if not 1 <= k <= 100:
        raise LimitError(f"Top-k must be in [1, 100], got {k}")
    if len(continuations) > MAX_CONTINUATIONS:
        raise LimitError(f"At most {MAX_CONTINUATIONS} continuations, got {len(continuations)}")
    for text in continuations:
        check_text("A continuation", text, 1_000)
    for m in models.values():
        context = context_length(m.model)
        check_prompt_chars(prompt, context, 1)
        longest = max((len(m.tokenizer(c, add_special_tokens=False)["input_ids"])
                       for c in continuations), default=1)
        n = len(m.tokenizer(prompt)["input_ids"])
        check_prompt_tokens(n, context, longest)


# ---------------------------------------------------------------- Report

@gpu(duration=300)
def audit_report(store_key: str, names: dict[str, str], suite_dir: str,
                 config) -> Iterator[tuple]:
    """The audit suite on every named model: result an `audits.report.Report`."""
    from audits.probes import load_suite
    from audits.report import run_suite

    def work(on_progress):
        suite = load_suite(suite_dir)
        models = _models(store_key, names)
        return run_suite({r: (m.model, m.tokenizer) for r, m in models.items()}, suite, config,
                         on_progress=progress_callback(on_progress, "audits"))

    yield from _with_progress(work)


# ---------------------------------------------------------------- In-context unlearning (ERASE)

@gpu(duration=120)
def erase_embeddings(store_key: str, name: str, task_dir: str,
                     cache_dir: str) -> Iterator[tuple]:
    """Embed the training inputs of the task folder `task_dir` with model `name` (cached under
    `cache_dir`): result a `(n_train, d)` float numpy array, rows in `train.jsonl` order. The
    Q-k-means fit on it needs no model and runs on the handler's side."""
    from unlearn.erase.embeddings import EmbeddingConfig, embed_texts
    from unlearn.erase.task import load_task

    def work(on_progress):
        task = load_task(task_dir)
        model = _models(store_key, {"embedder": name})["embedder"]
        message = f"embedding {len(task.train)} training examples with {name}"
        progress_callback(on_progress, "")(Progress("embedding", 0, None, message=message))
        return embed_texts([ex.input for ex in task.train], EmbeddingConfig(), model.model,
                           model.tokenizer, cache_dir=cache_dir, data_key=task.fingerprint())

    yield from _with_progress(work)


@gpu
def erase_label_probs(store_key: str, names: dict[str, str], context: str,
                      continuations: list[str]) -> dict[str, list[float]]:
    """`{role: [p per continuation]}`: the continuations' probabilities after `context`,
    normalized over the given continuations (the task's labels)."""
    import numpy as np

    from unlearn.erase.evaluate import continuation_logprobs

    out = {}
    for role, m in _models(store_key, names).items():
        scores = continuation_logprobs(m.model, m.tokenizer, [context], continuations)[0]
        probs = np.exp(scores - scores.max())
        out[role] = [float(p) for p in probs / probs.sum()]
    return out


@gpu(duration=180)
def erase_accuracy(store_key: str, names: dict[str, str], task, shot_ids: list[str],
                   n_test: int) -> Iterator[tuple]:
    """k-shot (the examples `shot_ids` of the `unlearn.erase.task.Task` record `task` as the
    prompt) and zero-shot accuracy on the first `n_test` test queries: result
    `{role: {"k_shot": float, "zero_shot": float, "queries": int}}`."""
    from unlearn.erase.evaluate import accuracy

    def work(on_progress):
        by_id = {ex.id: ex for ex in task.train}
        shots = [by_id[i] for i in shot_ids]
        queries = task.test[: int(n_test)]
        models = _models(store_key, names)
        out = {}
        report = progress_callback(on_progress, "accuracy")
        for i, (role, m) in enumerate(models.items()):
            report(Progress("accuracy", i, len(models),
                            message=f"{role}: k-shot and zero-shot on {len(queries)} queries"))
            out[role] = {"k_shot": accuracy(m.model, m.tokenizer, task, shots, queries),
                         "zero_shot": accuracy(m.model, m.tokenizer, task, [], queries),
                         "queries": len(queries)}
        return out

    yield from _with_progress(work)


# ---------------------------------------------------------------- Adversarial

@gpu(duration=600)
def adversarial_attacks(store_key: str, names: dict[str, str], suite_dir: str,
                        config) -> Iterator[tuple]:
    """`audits.adversarial` attacks on every named model (`config` an `AdversarialConfig`):
    result `{"result": run_adversarial output, "clean": {role: probability familiarity}}`."""
    from audits.adversarial.runner import run_adversarial
    from audits.probability import probability_familiarity
    from audits.probes import load_suite

    def work(on_progress):
        suite = load_suite(suite_dir)
        pairs = {r: (m.model, m.tokenizer) for r, m in _models(store_key, names).items()}
        result = run_adversarial(pairs, suite, config,
                                 on_progress=progress_callback(on_progress, "attacks"))
        clean = {r: float(probability_familiarity(m, t, suite.target_probability).familiarity)
                 for r, (m, t) in pairs.items()}
        return {"result": result, "clean": clean}

    yield from _with_progress(work)
