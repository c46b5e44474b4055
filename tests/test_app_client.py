"""The launched app (`python app.py --port N`) via `gradio_client`: endpoints, streaming, stop."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ui.testing import shared_app

GEN_ARGS = dict(mode="completion", temperature=0.8, top_p=0.95, top_k=0, rep=1.0, seed=0,
                template="auto", system="")


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    return shared_app(tiny_model_dir)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def _file(value) -> Path:
    """A file output: a local path, or an update dict carrying the server path (same host)."""
    if isinstance(value, dict):
        value = value.get("value") or value.get("path")
        value = value.get("path") if isinstance(value, dict) else value
    return Path(value)


def _value(out):
    """The value of an output that the server sent as a component update."""
    return out["value"] if isinstance(out, dict) and out.get("__type__") == "update" else out


def _gen(client, prompt: str, max_new: int):
    args = dict(GEN_ARGS)
    return client.submit(prompt, args["mode"], max_new, args["temperature"], args["top_p"],
                         args["top_k"], args["rep"], args["seed"], args["template"],
                         args["system"], api_name="/generate")


def test_endpoints_are_listed(client):
    api = client.view_api(print_info=False, return_format="dict")
    names = set(api["named_endpoints"])
    for name in ("/generate", "/stop", "/sample_k", "/flag", "/run_probes", "/token_probabilities",
                 "/validate_anchors", "/preview_translation", "/start_finetune",
                 "/cancel_finetune", "/build_report"):
        assert name in names, sorted(names)


def test_stream_yields_both_panes(client):
    job = _gen(client, "Mira walked", 24)
    outputs = []
    for out in job:
        outputs.append(out)
    final = job.outputs()[-1]
    assert len(outputs) >= 2 or len(job.outputs()) >= 2
    left, right, status, log_file = final
    assert left.strip() and right.strip()
    assert status.startswith("Done")
    rows = [json.loads(x) for x in _file(log_file).read_text().splitlines()]
    assert rows[-1]["prompt"] == "Mira walked"
    # intermediate updates carried partial text of both panes
    partial = [o for o in job.outputs() if o[0] and o[1]]
    assert partial


def test_same_seed_same_sampled_text_through_the_api(client):
    """Temperature 0.8, seed 0, three calls: the same text (each side has its own seeded
    generator); seed 1 gives another one."""
    outs = [_gen(client, "The old teacher opened the door and", 24).result(timeout=120)[:2]
            for _ in range(3)]
    assert outs[0] == outs[1] == outs[2] and outs[0][0].strip()
    args = dict(GEN_ARGS, seed=1)
    other = client.predict("The old teacher opened the door and", args["mode"], 24,
                           args["temperature"], args["top_p"], args["top_k"], args["rep"],
                           args["seed"], args["template"], args["system"],
                           api_name="/generate")[:2]
    assert other != outs[0]


def test_sample_k_endpoint(client):
    """New endpoint: the Generate inputs, then k and the user's terms; k samples per side."""
    rates, samples = client.predict("The old teacher opened the door and", "completion", 8,
                                    0.8, 0.95, 0, 1.0, 3, "auto", "", 2, "",
                                    api_name="/sample_k")
    assert "Leak rate" in rates or "no leak rate" in rates
    rows = _value(samples)["data"]
    assert [r[1] for r in rows] == [3, 4, 3, 4]


def test_stop_cancels_generation(client):
    job = _gen(client, "The teacher", 480)  # prompt + new tokens fit 512
    deadline = time.time() + 60
    while time.time() < deadline and not any(o[0] for o in job.outputs()):
        time.sleep(0.05)
    t0 = time.time()
    # Stop answers with the run's final status once it is over (or "Stopping..." after a
    # bounded wait on a slow machine)
    answer = client.predict(api_name="/stop")
    assert answer.startswith(("Stopped", "Stopping...")), answer
    final = job.result(timeout=30)
    assert time.time() - t0 < 10
    left, right, status, log_file = final
    assert status.startswith("Stopped")
    last = json.loads(_file(log_file).read_text().splitlines()[-1])
    assert last["stopped"] is True


def test_cancelled_client_job_stops_generation(client):
    """Cancelling the job (as a closed browser tab does) closes the stream: the cancel flag is set
    and the generate threads stop, so a later Stop finds nothing running."""
    job = _gen(client, "The teacher", 480)  # prompt + new tokens fit 512
    deadline = time.time() + 60
    while time.time() < deadline and not any(o[0] for o in job.outputs()):
        time.sleep(0.05)
    assert not job.done()
    job.cancel()  # returns once the server closed the iterator
    time.sleep(0.5)
    # the flag is already set: a natural end would have left it unset ("Stopping...")
    assert client.predict(api_name="/stop") == "Nothing to stop."


def test_probes_and_report_endpoints_answer(client):
    message, scores, table, csv_file, json_file = client.predict(
        "Target probes", None, 2, False, 4, 1.0, 0, api_name="/run_probes")
    assert "Ran 2 probes" in message
    assert [r[0] for r in _value(scores)["data"]] == ["original", "unlearned"]
    assert _file(csv_file).read_text().startswith("id,prompt")
    out = client.predict(["probability"], 2, False, api_name="/build_report")
    assert "Report on original, unlearned" in out[0]
    assert _file(out[4]).name == "report.json"


def test_unreachable_model_is_a_message_on_the_page(tiny_model_dir, caplog):
    """A hub id that cannot be fetched: the UI builds and shows why (no traceback)."""
    from ui.blocks import build_ui
    from ui.config import parse_config

    config = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                           "nobody-here/no-such-model-xyz", "--reference", ""], env={})
    demo = build_ui(config)
    page = json.dumps(demo.get_config_file(), default=str)
    assert "no-such-model-xyz" in page and "could not be loaded" in page
    assert "no-such-model-xyz" in caplog.text
