"""A launched app in public mode, driven through `gradio_client` the way a hostile visitor would.

A hypothesis fuzz test calls every named endpoint with hostile values (empty, 1 MB, control
characters, emoji, out-of-range and NaN numbers, malformed tables and uploads, paths): every
answer must be a result or a short clear message, never a raw or internal error; the server
keeps serving and its memory stays bounded. Also: a 1 MB prompt is refused within a second,
visitors cannot reach finetune / run loading without the operator login, rejected inputs come
back from the same endpoint.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ui.testing import free_port, launch_app, stop_app, write_tiny_demo

PASSWORD = "op-secret-1"
EXAMPLES = 12  # per endpoint with inputs (those without run once): ~250 calls
RSS_LIMIT_MB = 2500  # the app on the tiny models uses ~700 MB; 1 MB prompts must not add GBs
COUNTS: Counter = Counter()
BAD: list[str] = []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    demo = write_tiny_demo(root / "demo")
    port = free_port()
    proc = launch_app(["--original", str(tiny_model_dir), "--unlearned", str(tiny_model_dir),
                       "--reference", "", "--demo-dir", str(demo), "--runs-dir",
                       str(root / "runs"), "--public", "on", "--rate-limit", "0"],
                      port, root / "app.log", env={"WHP_OPERATOR_PASSWORD": PASSWORD})
    files = write_hostile_files(root / "files")
    yield {"url": f"http://127.0.0.1:{port}/", "proc": proc, "root": root, "files": files}
    stop_app(proc)


def client_for(app):
    from gradio_client import Client

    return Client(app["url"], verbose=False)


@pytest.fixture(scope="module")
def operator(app):
    """A client logged in as operator (its session may call the gated endpoints)."""
    client = client_for(app)
    client.predict(PASSWORD, api_name="/operator_login")
    return client


@pytest.fixture(scope="module")
def api(operator):
    return operator.view_api(print_info=False, return_format="dict")["named_endpoints"]


def write_hostile_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    files = {
        "binary.jsonl": bytes(range(256)) * 64,
        "binary.csv": b"\xff\xfe\x00key,translations\n\x80\x81",
        "nested.json": b"[" * 100_000 + b"]" * 100_000,
        "nested.jsonl": b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n",
        "wrong_schema.jsonl": b'{"id": 1, "prompt": 5}\n{"nope": true}\n',
        "long_prompt.jsonl": json.dumps({"id": "x", "prompt": "Mira " * 200_000,
                                         "terms": [], "subtlety": 1}).encode() + b"\n",
        "empty.jsonl": b"",
        "ok.jsonl": b'{"id": "a", "prompt": "Mira walked", "terms": [], "subtlety": 1}\n',
        "anchors.json": json.dumps({"Pip": ["Max"], "Gallowmere": ["the school"]}).encode(),
        "too_big.jsonl": b"x" * (6 * 1024 * 1024),
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


TEXTS = st.one_of(
    st.sampled_from(["", " ", "x" * 1_000_000, "\x00\x01\x1b[31m\x7f", "🧙\u200d♂️" * 2000,
                     "../../../../etc/passwd", "/etc/passwd", "a" * 5000, "Mira walked",
                     "meta-llama/Llama-2-7b-chat-hf", "<script>alert(1)</script>", "{{7*7}}",
                     "runs/../../", "\ud800" if False else "\u202e\u2066"]),
    st.text(max_size=40))
NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2**32, 2**64, -(2**63), 1e300, -1e300, float("nan"),
                     float("inf"), float("-inf"), 0.5, 1e-12, 4096]),
    st.floats(), st.integers(-(2**70), 2**70))
NESTED: list = []
for _ in range(300):
    NESTED = [NESTED]
ROW = st.lists(st.one_of(st.text(max_size=20), st.integers(-5, 5), st.none(), st.just("x" * 3000)),
               max_size=5)
TABLES = st.one_of(
    st.sampled_from([{"headers": [], "data": []}, {"data": []}, {"headers": ["a"], "data": "rows"},
                     {"foo": 1}, [], None, "table", {"headers": ["k", "t", "i"], "data": NESTED},
                     {"headers": ["key", "translations", "issues"],
                      "data": [["Pip", "Max", ""]]},
                     {"headers": ["k"], "data": [["a"]] * 3000}]),
    st.builds(lambda rows: {"headers": ["key", "translations", "issues"], "data": rows},
              st.lists(ROW, max_size=6)))
BOOLS = st.one_of(st.booleans(), st.sampled_from([None, "yes", 2, 0.5]))
FILE_KEYS = ["binary.jsonl", "binary.csv", "nested.json", "nested.jsonl", "wrong_schema.jsonl",
             "long_prompt.jsonl", "empty.jsonl", "ok.jsonl", "anchors.json", "too_big.jsonl",
             "/etc/passwd", None, "not-a-file-dict"]


def value_strategy(param: dict):
    comp = param["component"].lower()
    if comp in ("textbox",):
        return TEXTS
    if comp in ("slider", "number"):
        return NUMBERS
    if comp == "checkbox":
        return BOOLS
    if comp == "dataframe":
        return TABLES
    if comp == "file":
        return st.sampled_from(FILE_KEYS)
    choices = re.findall(r"'((?:[^'\\]|\\.)*)'", param["python_type"]["type"])[:20]
    if comp == "checkboxgroup":
        return st.one_of(st.lists(st.sampled_from(choices or ["x"]), max_size=3),
                         st.lists(TEXTS, max_size=2), TEXTS)
    return st.one_of(st.sampled_from(choices), TEXTS) if choices else TEXTS


def materialise(value, param, files):
    from gradio_client import handle_file

    if param["component"].lower() != "file" or value is None:
        return value
    if value in files:
        return handle_file(str(files[value]))
    return value  # a raw path or junk instead of an uploaded file


def classify(call) -> str:
    """ok / clear (a short message meant for the user) / internal / raw / refused-upload."""
    from gradio_client.exceptions import AppError

    try:
        call()
        return "ok"
    except AppError as exc:
        msg = str(exc.message or "")
        if msg.startswith("Internal error ("):
            BAD.append(f"internal: {msg}")
            return "internal"
        if ("verbose error reporting" in msg or "Traceback" in msg or not msg.strip()
                or "/tmp/" in msg or "/work/" in msg or len(msg) > 700):
            BAD.append(f"raw: {msg[:300]}")
            return "raw"
        return "clear"
    except Exception as exc:  # noqa: BLE001 - classified, not hidden
        text = f"{type(exc).__name__}: {exc}"
        if "not JSON compliant" in text:
            return "unsendable"  # NaN/inf: the client refuses to send it (see test_nan_over_http)
        if "413" in text or "too large" in text.lower() or "file size" in text.lower():
            return "refused-upload"  # max_file_size: the upload itself is refused
        BAD.append(f"client: {text[:300]}")
        return "raw"


ENDPOINTS = ["/generate", "/stop", "/sample_k", "/flag", "/pick_attack", "/check_upload",
             "/run_probes", "/pick_probe", "/token_probabilities", "/refresh", "/steps_plot",
             "/validate_anchors", "/add_row", "/select_row", "/delete_row", "/lambda_3",
             "/import_dictionary", "/lambda_4", "/lambda_5", "/suggest_anchors", "/select_row_1",
             "/accept", "/accept_1", "/preview_translation", "/start_finetune",
             "/cancel_finetune", "/load_final", "/load_run", "/refresh_1", "/build_report",
             "/operator_login", "/lambda_6", "/erase_select", "/pick_row", "/erase_delete",
             "/erase_answer", "/erase_accuracy", "/cost_chart", "/run_adversarial"]


def test_every_endpoint_is_fuzzed(api):
    assert sorted(api) == sorted(ENDPOINTS)  # a new endpoint must join the fuzz list


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_endpoint(app, operator, api, endpoint, data):
    params = api[endpoint]["parameters"]
    values = [materialise(data.draw(value_strategy(p), label=p["parameter_name"]), p,
                          app["files"]) for p in params]
    outcome = classify(lambda: operator.predict(*values, api_name=endpoint))
    COUNTS[outcome] += 1
    COUNTS["calls"] += 1
    assert outcome not in ("raw", "internal"), (endpoint, BAD[-1:])
    assert app["proc"].poll() is None, "the server died"


def test_one_megabyte_prompts_are_refused_fast_and_memory_stays_bounded(app, operator):
    from gradio_client.exceptions import AppError

    pid = app["proc"].pid
    before = rss_mb(pid)
    big = "Mira " * 200_000  # 1 MB
    for endpoint, args in (("/generate", (big, "completion", 8, 0.8, 0.95, 0, 1.0, 0, "auto",
                                          "")),
                           ("/token_probabilities", (big, 5, " the")),
                           ("/preview_translation", ({"headers": ["key", "translations",
                                                                  "issues"],
                                                     "data": [["Pip", "Max", ""]]}, big, 0))):
        for _ in range(3):
            t0 = time.perf_counter()
            with pytest.raises(AppError, match="too long"):
                operator.predict(*args, api_name=endpoint)
            assert time.perf_counter() - t0 < 1.0, endpoint
    after = rss_mb(pid)
    print(f"RSS before {before:.0f} MB, after nine 1 MB prompts {after:.0f} MB")
    assert after < RSS_LIMIT_MB and after - before < 300


def call_http(app, endpoint: str, body: str) -> str:
    """POST a raw JSON body (NaN allowed) to the call API; the SSE answer as text."""
    import httpx

    url = app["url"] + "gradio_api/call/" + endpoint
    event = httpx.post(url, content=body, headers={"Content-Type": "application/json"},
                       timeout=30).json()["event_id"]
    with httpx.stream("GET", f"{url}/{event}", timeout=60) as resp:
        return "".join(resp.iter_text())


def test_nan_and_infinity_over_http_are_clear_errors(app):
    """What gradio_client will not send: NaN / Infinity literals in the JSON body."""
    for seed, temp in (("NaN", "0.8"), ("Infinity", "0.8"), ("0", "NaN"), ("-Infinity", "1")):
        body = (f'{{"data": ["Mira", "completion", 4, {temp}, 0.95, 0, 1.0, {seed}, "auto", '
                '""]}')
        answer = call_http(app, "generate", body)
        assert "event: error" in answer, answer[:500]
        assert "finite number" in answer or "must be in" in answer, answer[:500]
        assert "Traceback" not in answer and "Internal error" not in answer


def test_visitors_cannot_finetune_or_load_runs(app):
    from gradio_client.exceptions import AppError

    visitor = client_for(app)
    rows = {"headers": ["key", "translations", "issues"], "data": [["Pip", "Max", ""]]}
    calls = {"/start_finetune": (rows, 5, 2, 1e-3, False, 256, 32, 0.25),
             "/load_run": ("whp-anything",), "/build_report": (["probability"], 2, False)}
    for endpoint, args in calls.items():
        with pytest.raises(AppError, match="operator login"):
            visitor.predict(*args, api_name=endpoint)
    with pytest.raises(AppError, match="Wrong operator password"):
        visitor.predict("guess", api_name="/operator_login")
    assert not list((app["root"] / "runs").glob("whp-*"))  # nothing was written


def test_operator_inputs_are_checked_before_anything_is_written(app, operator):
    from gradio_client.exceptions import AppError

    rows = {"headers": ["key", "translations", "issues"], "data": [["Pip", "Max", ""]]}
    for lr in (1e300, 0, -1):
        with pytest.raises(AppError, match=r"Learning rate must be in \(0, 1\]"):
            operator.predict(rows, 5, 2, lr, False, 256, 32, 0.25, api_name="/start_finetune")
    for run in ("/etc", "../..", "meta-llama/Llama-2-7b-chat-hf", "a" * 5000):
        with pytest.raises(AppError) as err:
            operator.predict(run, api_name="/load_run")
        assert "/tmp" not in err.value.message and "Traceback" not in err.value.message
    with pytest.raises(AppError, match=r"Seed.* must be in \[0, 4294967295\], got 1\.8\d*e\+19"):
        operator.predict("Mira", "completion", 4, 0.8, 0.95, 0, 1.0, 2**64, "auto", "",
                         api_name="/generate")


def test_the_issues_hostile_calls_are_clear_messages(app, operator):
    """The calls that returned raw internal errors before (issue 15's list)."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    files = app["files"]
    empty = {"headers": [], "data": []}
    calls = [("/preview_translation", (empty, "Pip flew.", 0), "Fix the dictionary"),
             ("/import_dictionary", (handle_file(str(files["binary.csv"])),), "UTF-8"),
             ("/import_dictionary", (handle_file(str(files["nested.json"])),), "nested too deeply"),
             ("/check_upload", (handle_file(str(files["binary.jsonl"])),), None),
             ("/select_row", (), "event data"),
             ("/load_run", ("a" * 5000,), "too long"),
             ("/generate", ("Mira", "completion", 4, 0.8, 0.95, 0, 1.0, 2**64, "auto", ""),
              "Seed")]
    for endpoint, args, message in calls:
        try:
            out = operator.predict(*args, api_name=endpoint)
        except AppError as exc:
            text = exc.message
            assert not text.startswith("Internal error"), (endpoint, text)
            assert "verbose error reporting" not in text and "/tmp/" not in text, text
            if message:
                assert message in text, (endpoint, text)
        else:  # answered with a result: then it says what is wrong in the page
            assert message is None, (endpoint, out)
            assert "Invalid" in json.dumps(out, default=str), (endpoint, out)


def test_zz_server_still_serves_and_fuzz_counts(app, operator):
    out = operator.predict("Mira walked", "completion", 4, 0.8, 0.95, 0, 1.0, 0, "auto", "",
                           api_name="/generate")
    assert out[2].startswith("Done")
    print("fuzz counts:", dict(COUNTS))
    (app["root"] / "fuzz_counts.json").write_text(json.dumps(COUNTS))
    assert COUNTS["calls"] >= 200
    assert COUNTS["raw"] == 0 and COUNTS["internal"] == 0, BAD[:10]
