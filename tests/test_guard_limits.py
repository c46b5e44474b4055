"""Bounds, the error boundary, public-mode rules and run folders, without a server."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from ui import guard
from ui.limits import (
    SEED_MAX,
    LimitError,
    NumberBound,
    RateLimiter,
    bound_for,
    check_prompt_chars,
    check_prompt_tokens,
)
from ui.public import Policy, finish_run, prune_runs, public_mode, resolve_run, user_key
from ui.state import Session

# ---------------------------------------------------------------- limits

@pytest.mark.parametrize("value", [2**32, -1, 2**64, 0.5, float("nan"), float("inf"), "7", True])
def test_seed_bound_refuses(value):
    with pytest.raises(LimitError):
        bound_for("Seed (empty = random)").check("Seed", value)


def test_seed_and_lr_bounds_accept_their_range():
    bound_for("Seed").check("Seed", 0)
    bound_for("seed").check("Seed", SEED_MAX)
    lr = bound_for("Learning rate")
    lr.check("lr", 1.0)
    lr.check("lr", 1e-9)
    for bad in (0, 1e300, -1e-3, 1.0000001):
        with pytest.raises(LimitError, match=r"\(0, 1\]"):
            lr.check("lr", bad)
    assert bound_for("Temperature") is None


def test_number_bound_message_names_the_range():
    with pytest.raises(LimitError, match=r"must be in \[0, 10\], got 11"):
        NumberBound(0, 10).check("x", 11)


def test_prompt_checks():
    check_prompt_chars("a" * 100, context=512, new_tokens=48)
    with pytest.raises(LimitError, match="too long: 1,000,000 characters"):
        check_prompt_chars("a" * 1_000_000, context=512, new_tokens=48)
    with pytest.raises(LimitError, match="too long for this model"):  # 464 * 32 chars fit
        check_prompt_chars("a" * 14_849, context=512, new_tokens=48)
    check_prompt_chars("a" * 14_848, context=512, new_tokens=48)
    check_prompt_tokens(464, context=512, new_tokens=48)
    with pytest.raises(LimitError, match="at most 464 .* set Max new tokens to at most 47 "):
        check_prompt_tokens(465, context=512, new_tokens=48)
    with pytest.raises(LimitError, match="in the 1 token left .* lower Max new tokens"):
        check_prompt_chars("a" * 37, context=512, new_tokens=511)  # the newcomer's case
    for check in (check_prompt_tokens, check_prompt_chars):  # no room at all: say what to lower
        with pytest.raises(LimitError, match=r"Max new tokens \(512\) fills .* lower it"):
            check(1 if check is check_prompt_tokens else "a", context=512, new_tokens=512)


def test_rate_limiter_sliding_window():
    now = [0.0]
    lim = RateLimiter(2, per_s=60, clock=lambda: now[0])
    assert lim.hit("a") == 0 and lim.hit("a") == 0
    assert lim.hit("a") == pytest.approx(60)
    assert lim.hit("b") == 0  # per key
    now[0] = 30
    assert lim.hit("a") == pytest.approx(30)
    now[0] = 60.5
    assert lim.hit("a") == 0
    assert RateLimiter(0).hit("a") == 0  # unlimited


def test_rate_limiter_is_thread_safe():
    lim = RateLimiter(50, per_s=3600)
    allowed = []

    def worker():
        for _ in range(20):
            allowed.append(lim.hit("k") == 0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50


# ---------------------------------------------------------------- public mode

def test_public_mode_detection():
    assert not public_mode("auto", "127.0.0.1", env={})
    assert not public_mode("auto", "localhost", env={})
    assert public_mode("auto", "0.0.0.0", env={})
    assert public_mode("auto", "127.0.0.1", env={"SPACE_ID": "me/space"})
    assert public_mode("on", "127.0.0.1", env={})
    assert not public_mode("off", "0.0.0.0", env={"SPACE_ID": "x"})
    with pytest.raises(ValueError):
        public_mode("maybe", None, env={})


def _policy(public=True, calls=2):
    return Policy(public=public, password="s3cret", limiter=RateLimiter(calls, per_s=3600))


def test_policy_gates_expensive_actions_until_operator_login():
    policy = _policy()
    visitor = Session(sides={})
    with pytest.raises(LimitError, match="operator login"):
        policy.admit("start_finetune", (visitor, [], 1), None)
    with pytest.raises(LimitError, match="operator login"):
        policy.admit("load_run", (visitor, "x"), None)
    policy.admit("validate_anchors", ([],), None)  # not gated, not limited
    operator = Session(sides={}, operator=True)
    policy.admit("load_run", (operator, "x"), None)
    _policy(public=False).admit("start_finetune", (visitor,), None)  # local: all on
    assert policy.check_password("s3cret") and not policy.check_password("s3cre")
    assert not Policy(public=True).check_password("")  # no password set: no login


def test_policy_rate_limits_per_user():
    policy = _policy(calls=2)
    a = SimpleNamespace(username=None, client=SimpleNamespace(host="10.0.0.1"))
    b = SimpleNamespace(username=None, client=SimpleNamespace(host="10.0.0.2"))
    s = Session(sides={})
    policy.admit("generate", (s,), a)
    policy.admit("generate", (s,), a)
    with pytest.raises(LimitError, match="Too many requests"):
        policy.admit("generate", (s,), a)
    policy.admit("generate", (s,), b)
    assert user_key(SimpleNamespace(username="ann", client=None)) == "user:ann"
    assert user_key(None, s) == f"session:{s.id}"


def test_policy_from_config_reads_env():
    config = SimpleNamespace(public="on", host="127.0.0.1", rate_limit=7)
    policy = Policy.from_config(config, env={"WHP_OPERATOR_PASSWORD": "pw",
                                             "WHP_OPERATORS": "ann, bob"})
    assert policy.public and policy.password == "pw" and policy.operators == {"ann", "bob"}
    assert policy.limiter.calls == 7
    local = Policy.from_config(SimpleNamespace(public="auto", host="127.0.0.1", rate_limit=7),
                               env={})
    assert not local.public and local.limiter.calls == 0


# ---------------------------------------------------------------- run folders

def _run(runs: Path, name: str, mtime: float) -> Path:
    run = runs / name
    for sub in ("reinforced", "checkpoints/checkpoint-2", "final"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps({"kind": "whp"}))
    os.utime(run / "run.json", (mtime, mtime))
    return run


def test_resolve_run_accepts_only_folders_under_runs_dir(tmp_path):
    runs = tmp_path / "runs"
    run = _run(runs, "whp-1", time.time())
    assert resolve_run(runs, "whp-1") == run.resolve()
    assert resolve_run(runs, str(run)) == run.resolve()
    for bad in ("../", "..", "/etc", str(tmp_path), "meta-llama/Llama-2-7b-chat-hf",
                "whp-1/../../", "a" * 5000, "", "x\x00y"):
        with pytest.raises(LimitError) as err:
            resolve_run(runs, bad)
        assert str(tmp_path) not in str(err.value)  # no server path in the message
    with pytest.raises(LimitError, match="No run named 'nope'"):
        resolve_run(runs, "nope")


def test_finish_run_deletes_intermediates_and_prunes_oldest(tmp_path):
    runs = tmp_path / "runs"
    now = time.time()
    olds = [_run(runs, f"old-{i}", now - 100 + i) for i in range(4)]
    new = _run(runs, "new", now)
    (runs / "reports").mkdir()  # not a run: never pruned
    pruned = finish_run(new, runs, max_runs=3)
    assert sorted(pruned) == ["old-0", "old-1"]
    assert sorted(p.name for p in runs.iterdir()) == ["new", "old-2", "old-3", "reports"]
    assert not (new / "checkpoints").exists() and (new / "final").is_dir()
    assert (new / "reinforced").is_dir()  # the newest run keeps its reinforced model
    assert not (olds[3] / "reinforced").exists() and (olds[3] / "final").is_dir()
    assert prune_runs(runs, 0) == []  # 0 = keep all


# ---------------------------------------------------------------- the boundary

def test_scrub_removes_server_paths():
    roots = guard.server_roots("/srv/app/runs", "/tmp")
    text = guard.scrub("cannot open /srv/app/runs/whp-1/final and /home/u/x/secret.txt", roots)
    assert "/srv" not in text and "/home" not in text
    assert "whp-1/final" in text and "secret.txt" in text
    assert len(guard.scrub("x" * 5000, [])) <= guard.MESSAGE_MAX + 3


def test_friendly_messages_for_expected_problems():
    assert guard.friendly(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")) == \
        "The file is not UTF-8 text."
    assert "nested" in guard.friendly(RecursionError())
    assert "too long" in guard.friendly(OSError(36, "File name too long"))
    assert guard.friendly(LimitError("x")) == "x"
    assert guard.friendly(IndexError("list index out of range")) is None
    assert guard.friendly(TypeError("boom")) is None


def test_wrap_keeps_generators_signatures_and_hides_internal_errors(caplog):
    boundary = guard.Boundary(guard.server_roots("/srv/app"))

    def stream(session: Session, prompt: str, progress=gr.Progress()):
        yield 1
        raise KeyError("/srv/app/secret")

    def fails(evt: gr.SelectData):
        raise LimitError("Seed must be in [0, 4294967295], got 1e+20")

    wrapped = boundary.wrap(stream, "generate")
    import inspect

    assert inspect.isgeneratorfunction(wrapped)
    params = list(inspect.signature(wrapped).parameters)
    assert params == ["session", "prompt", "progress", "whp_request"]
    from gradio.utils import get_type_hints

    assert get_type_hints(wrapped)["whp_request"] is gr.Request
    gen = wrapped(None, "p", None, None)
    assert next(gen) == 1
    with pytest.raises(gr.Error) as err:
        next(gen)
    assert err.value.message.startswith("Internal error (")
    assert "secret" not in err.value.message
    trace = err.value.message.split("(")[1].split(")")[0]
    assert trace in caplog.text and "KeyError" in caplog.text  # logged server-side with its id
    wrapped_fail = boundary.wrap(fails, "select_row")
    assert get_type_hints(wrapped_fail)["evt"] is gr.SelectData  # event data still injected
    with pytest.raises(gr.Error, match="Seed must be in"):
        wrapped_fail(None, None)


def test_wrap_runs_the_admit_hook_with_the_request():
    seen = []

    def admit(endpoint, args, request):
        seen.append((endpoint, args, request))
        raise LimitError("no")

    wrapped = guard.Boundary(admit=admit).wrap(lambda a, b: a + b, "x")
    with pytest.raises(gr.Error, match="no"):
        wrapped(1, 2, "REQ")
    assert seen == [("x", (1, 2), "REQ")]


@pytest.mark.parametrize("block,value", [
    (gr.Number(label="Seed"), 2**64), (gr.Number(label="Seed"), -1),
    (gr.Number(label="Learning rate"), 1e300), (gr.Number(label="Learning rate"), 0),
    (gr.Slider(0, 2, label="Temperature"), float("nan")), (gr.Slider(label="k"), "abc"),
    (gr.Textbox(label="Prompt"), "x" * 1_000_001), (gr.Textbox(label="Prompt"), {"a": 1}),
    (gr.Dropdown(label="Run", allow_custom_value=True), "a" * 5000),
    (gr.Dataframe(label="T"), {"data": [["a"]] * 3000}),
    (gr.Dataframe(label="T"), {"data": "rows"}), (gr.Dataframe(label="T"), {"data": [[["x"]]]}),
])
def test_check_payload_refuses_hostile_values(block, value):
    with pytest.raises(LimitError):
        guard.check_payload(block, value)


def test_check_payload_accepts_normal_values():
    guard.check_payload(gr.Number(label="Seed"), 42)
    guard.check_payload(gr.Number(label="Seed"), None)
    guard.check_payload(gr.Slider(0, 2, label="Temperature"), 0.7)
    guard.check_payload(gr.Textbox(label="Prompt"), "Once upon a time")
    guard.check_payload(gr.Dataframe(label="T"), {"headers": ["a"], "data": [["x", 1]]})


def test_wrap_supports_async_handlers_and_star_args():
    import asyncio

    boundary = guard.Boundary()

    async def coro(x):
        if x < 0:
            raise IndexError("raw")
        return x * 2

    async def agen(x):
        yield x
        raise LimitError("stop here")

    w = boundary.wrap(coro, "c")
    assert asyncio.run(w(2, None)) == 4
    with pytest.raises(gr.Error, match=r"Internal error \("):
        asyncio.run(w(-1, None))

    async def drain():
        return [item async for item in boundary.wrap(agen, "g")(7, None)]

    with pytest.raises(gr.Error, match="stop here"):
        asyncio.run(drain())
    star = boundary.wrap(lambda *rows: len(rows), "s")  # no request appended
    assert star(1, 2, 3) == 3
