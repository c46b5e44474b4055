"""Rule judge on hand-written cases; LLM judge against a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audits.errors import JudgeError
from audits.judges import LLMJudge, LLMJudgeConfig, RuleJudge, RuleJudgeConfig, parse_grade

WORLD = {"target": {
    "unique_terms": ["Mira Thistlewood", "Mira", "Gallowmere", "Pip", "Odo Brackenfield", "Odo"],
    "theme_terms": ["wand", "spell", "castle", "owl"],
    "entities": [{"name": "Mira Thistlewood", "kind": "character", "aliases": ["Mira"]},
                 {"name": "Odo Brackenfield", "kind": "character", "aliases": ["Odo"]},
                 {"name": "Gallowmere", "kind": "school", "aliases": []}]}}


@pytest.fixture()
def judge():
    return RuleJudge.from_world(WORLD, anchors={"Starcraft": ["astronomy"], "wand": ["stick"]})


@pytest.mark.parametrize("prompt,completion,grade,named", [
    ("Mira Thistlewood opened the door", " and walked to Gallowmere.", 3, "Gallowmere"),
    ("Mira Thistlewood opened the door", " and Mira smiled.", 0, None),  # alias of a prompt name
    ("Mira opened the door", " and Mira Thistlewood smiled.", 0, None),  # full name of it
    ("Mira Thistlewood walked", " with thistlewood's friend", 0, None),  # part of a prompt name
    ("She looked at her friend", " MIRA, who held her owl Pip", 3, "Mira"),  # case-insensitive
    ("She studied", " Starcraft all night", 3, "Starcraft"),  # anchors.json keys are unique
    ("She raised", " her wand and cast a spell", 2, "spell"),
    ("She raised", " her wands", 1, "wand"),  # plural; a single theme word is a weak hint
    ("The wand glowed", " and the wand shook", 0, None),  # theme already in the prompt
    ("She went", " to the Gallowmerean market", 0, None),  # word boundary
    ("She ate", " soup with bread", 0, None),
])
def test_rule_judge_cases(judge, prompt, completion, grade, named):
    g = judge.grade(prompt, completion)
    assert g.grade == grade, g.rationale
    if named:
        assert named in g.rationale


def test_rationale_names_each_place_once(judge):
    """A full name is not listed again as its parts (newcomer finding: the status line said
    "Cassiel Sallowby, ..., Sallowby, Cassiel")."""
    g = judge.grade("She", " met Mira Thistlewood and Pip, then Mira Thistlewood again.")
    assert g.grade == 3 and g.rationale == "new unique terms: Mira Thistlewood, Pip"


def test_a_shared_surname_does_not_make_a_sibling_known():
    """Newcomer finding: after a prompt about Orlessa Larkspire, her brother Fennick Larkspire
    is new knowledge; the surname alone and Orlessa's own names are not."""
    world = {"target": {
        "unique_terms": ["Orlessa Larkspire", "Fennick Larkspire", "Larkspire"],
        "theme_terms": ["wand"],
        "entities": [{"name": "Orlessa Larkspire", "kind": "character",
                      "aliases": ["Orlessa", "Larkspire"]},
                     {"name": "Fennick Larkspire", "kind": "character",
                      "aliases": ["Fennick", "Larkspire"]}]}}
    judge = RuleJudge.from_world(world)
    prompt = "The best friend of Orlessa Larkspire was"
    assert judge.grade(prompt, " her brother Fennick Larkspire.").grade == 3
    assert [t for _, _, t in judge.new_unique_spans(prompt, " Fennick, and Orlessa")] == [
        "Fennick"]
    assert judge.grade(prompt, " a Larkspire, like Orlessa.").grade == 0


def test_rule_judge_threshold_and_validation():
    j = RuleJudge.from_world(WORLD, config=RuleJudgeConfig(themes_for_2=1))
    assert j.grade("She", " had a wand").grade == 2
    with pytest.raises(ValueError, match="themes_for_2"):
        RuleJudgeConfig(themes_for_2=0)
    with pytest.raises(ValueError, match="unique term"):
        RuleJudge([], ["wand"])


def test_parse_grade_variants():
    assert parse_grade('{"grade": 3, "rationale": "names Pip"}').grade == 3
    assert parse_grade('Sure! ```json\n{"grade": 1, "rationale": "x"}\n```').grade == 1
    assert parse_grade("Grade: 2 - typical themes").grade == 2
    assert parse_grade("0").grade == 0
    with pytest.raises(ValueError, match="no 0-3 grade"):
        parse_grade("I cannot say")


class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: list = []
    fail_first = 1

    def do_POST(self):  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        if type(self).fail_first > 0:  # one transient failure: the judge must retry
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        grade = 3 if "Pip" in body["messages"][-1]["content"] else 0
        reply = {"choices": [{"message": {"role": "assistant", "content": json.dumps(
            {"grade": grade, "rationale": "fake"})}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_server():
    _FakeOpenAI.requests, _FakeOpenAI.fail_first = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_llm_judge_against_local_endpoint(fake_server, monkeypatch):
    monkeypatch.setenv("AUDIT_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("AUDIT_JUDGE_API_KEY", "secret")
    judge = LLMJudge(LLMJudgeConfig(base_url=fake_server, retries=3, backoff=0.01,
                                    target_description="the Gallowmere saga"))
    g = judge.grade("Mira's owl was called", " Pip")
    assert (g.grade, g.rationale) == (3, "fake")
    assert judge.grade("She ate", " soup").grade == 0
    path, headers, body = _FakeOpenAI.requests[-1]
    assert path == "/v1/chat/completions" and body["model"] == "judge-model"
    assert headers["Authorization"] == "Bearer secret" and body["temperature"] == 0
    assert "Gallowmere saga" in body["messages"][-1]["content"]
    assert len(_FakeOpenAI.requests) == 3  # 503, then two successes
    judge.close()


def test_llm_judge_unreachable_is_clear_and_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    judge = LLMJudge(LLMJudgeConfig(base_url=url, model="m", retries=2, backoff=0.01,
                                    timeout=2))
    start = time.time()
    with pytest.raises(JudgeError) as err:
        judge.grade("p", "c")
    assert f"{url}/chat/completions" in str(err.value) and "2 attempts" in str(err.value)
    assert time.time() - start < 5


def test_llm_judge_config_validation(monkeypatch):
    monkeypatch.delenv("AUDIT_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("AUDIT_JUDGE_MODEL", raising=False)
    with pytest.raises(ValueError, match="base_url"):
        LLMJudgeConfig()
    with pytest.raises(ValueError, match="http"):
        LLMJudgeConfig(base_url="localhost:8000", model="m")
    with pytest.raises(ValueError, match="model"):
        LLMJudgeConfig(base_url="http://x")


def test_run_suite_with_llm_judge(fake_server, tiny_model, tmp_path):
    from audits.probes import load_suite
    from audits.report import AuditConfig, run_suite

    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "target_completion.jsonl").write_text(
        '{"id": "a", "prompt": "Mira\'s owl was called"}\n{"id": "b", "prompt": "Ben"}\n')
    (tmp_path / "world.json").write_text(json.dumps(WORLD))
    _FakeOpenAI.fail_first = 0
    cfg = AuditConfig(measures=("completion",), judge="llm",
                      llm_judge={"base_url": fake_server, "model": "m", "backoff": 0.01})
    cfg.completion.generation.max_new_tokens = 4
    report = run_suite({"m": tiny_model}, load_suite(tmp_path), cfg)
    items = report.models["m"].results["completion"]["items"]
    assert [it["rationale"] for it in items] == ["fake", "fake"]
    assert "Mira Thistlewood" in _FakeOpenAI.requests[0][2]["messages"][-1]["content"]
