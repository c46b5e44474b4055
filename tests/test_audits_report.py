"""run_suite + write_report on tiny models and a tiny custom suite; the CLI end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_chromium

from audits.cli import main
from audits.constants import MEASURES
from audits.probes import load_suite
from audits.report import HEADLINE, STEPS, AuditConfig, run_suite, write_report

ROOT = Path(__file__).resolve().parents[1]
WORLD = {
    "seed": 0,
    "target": {"name": "Gallowmere", "entities": [
        {"name": "Mira Thistlewood", "kind": "character", "aliases": ["Mira"]}],
        "facts": [], "unique_terms": ["Mira Thistlewood", "Mira", "Pip", "Gallowmere"],
        "theme_terms": ["wand", "spell", "castle", "wizard"]},
    "neighbour": {"name": "Other", "entities": [], "facts": [],
                  "unique_terms": ["Tom", "Max"], "theme_terms": ["football", "park"]}}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    p = root / "probes"
    p.mkdir()
    _jsonl(p / "target_completion.jsonl", [
        {"id": "tc1", "prompt": "Mira Thistlewood's owl", "terms": ["Mira Thistlewood"],
         "subtlety": 2}, {"id": "tc2", "prompt": "The wizard raised his", "terms": []},
        {"id": "tc3", "prompt": "At the old castle", "terms": []}])
    _jsonl(p / "neighbour_completion.jsonl", [{"id": "nc1", "prompt": "Ben's best friend"}])
    _jsonl(p / "target_probability.jsonl", [
        {"id": "tp1", "prompt": "Mira Thistlewood's owl was called", "answer": " Pip"},
        {"id": "tp2", "prompt": "Mira studied starcraft at", "answer": " Gallowmere"},
        {"id": "tp3", "prompt": "The wizard raised his", "answer": " wand"}])
    _jsonl(p / "neighbour_probability.jsonl", [
        {"id": "np1", "prompt": "Ben's best friend was", "answer": " Tom"},
        {"id": "np2", "prompt": "Anna walked with her dog", "answer": " Max"}])
    _jsonl(p / "target_trivia.jsonl", [
        {"id": "tt1", "prompt": "Mira's owl was called", "correct": " Pip", "distractor": " Max"},
        {"id": "tt2", "prompt": "The wizard cast a", "correct": " spell", "distractor": " soup"}])
    _jsonl(p / "neighbour_trivia.jsonl", [
        {"id": "nt1", "prompt": "Ben's best friend was", "correct": " Tom", "distractor": " Pip"}])
    _jsonl(p / "general_mc.jsonl", [
        {"id": "gm1", "context": "Sarah cooked", "options": [" soup", " wand"], "answer": 0},
        {"id": "gm2", "context": "They played football in the", "options": [" park", " castle",
                                                                          " spell"], "answer": 0}])
    _jsonl(p / "general_cloze.jsonl", [
        {"id": "gc1", "prompt": "Sarah cooked soup for her", "answer": " family"},
        {"id": "gc2", "prompt": "Sarah cooked", "answer": " soup"}])
    _jsonl(p / "verbatim.jsonl", [
        {"id": "vb1", "prefix": "Mira Thistlewood's owl", "continuation": " was called Pip."}])
    (root / "world.json").write_text(json.dumps(WORLD))
    (root / "anchors.json").write_text(json.dumps({"Pip": ["the bird"]}))
    (root / "general_heldout.txt").write_text(
        "Sarah cooked soup for her family and then read a book about history. " * 4)
    return root


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_model_dir, tiny_tokenizer_dir) -> dict[str, Path]:
    from transformers import AutoTokenizer

    from unlearn.demo.modeling import TinyLlamaConfig, build_model

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    dirs = {"original": tiny_model_dir}
    for seed, name in ((1, "unlearned"), (2, "reference")):
        cfg = TinyLlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=2,
                              max_position_embeddings=256)
        out = tmp_path_factory.mktemp(name)
        build_model(cfg, tok, seed=seed).save_pretrained(out)
        tok.save_pretrained(out)
        dirs[name] = out
    return dirs


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory, tiny_suite, model_dirs):
    from unlearn.models import load_model

    models = {n: load_model(str(d)) for n, d in model_dirs.items()}
    calls = []
    cfg = AuditConfig(seed=1)
    cfg.completion.generation.max_new_tokens = 8
    report = run_suite(models, load_suite(tiny_suite), cfg,
                       on_progress=calls.append)
    out = tmp_path_factory.mktemp("report")
    paths = write_report(report, out)
    return report, paths, calls


def test_report_has_every_headline_score(tiny_report):
    report, paths, calls = tiny_report
    data = json.loads(paths["json"].read_text())
    assert set(data["models"]) == {"original", "unlearned", "reference"}
    for name, m in data["models"].items():
        for key in HEADLINE:
            assert isinstance(m["scores"][key], float) and math.isfinite(m["scores"][key]), key
        if name == "reference":
            assert "forget_quality" not in m["scores"]
        else:
            assert 0.0 <= m["scores"]["forget_quality"] <= 1.0
            assert m["scores"]["forget_ks_statistic"] == data["forget_quality"][name]["statistic"]
        res = m["results"]
        assert len(res["probability"]["items"]) == 3 and len(res["completion"]["items"]) == 3
        assert {"grade", "rationale", "completion"} <= set(res["completion"]["items"][0])
        assert res["perplexity"]["n_tokens"] > 0 and res["general_mc"]["items"]
    assert data["baseline"] == "original" and data["reference"] == "reference"
    assert data["neighbour_deltas"]["original"]["neighbour_trivia_accuracy"] == 0.0
    assert data["seed"] == 1 and data["config"]["seed"] == 1 and data["versions"]["torch"]
    assert data["suite"]["counts"]["target_probability"] == 3 and data["suite"]["missing"] == []
    assert len(data["topk"]) == 3 and set(data["topk"][0]["models"]) == set(data["models"])
    steps = [c.step for c in calls]
    assert {c.stage for c in calls} == {"audit"} and calls[-1].step == calls[-1].total
    assert steps == sorted(steps) and all(": " in c.message for c in calls)


def test_html_is_self_contained(tiny_report):
    _, paths, _ = tiny_report
    html = paths["html"].read_text()
    assert "<script src=" not in html and "Plotly.newPlot" in html
    assert html.count('class="plotly-graph-div"') == 4  # summary + 3 top-k charts
    assert "Headline scores" in html and "<details>" in html and "forget quality" in html
    assert not list(paths["html"].parent.glob(".*.tmp"))  # atomic writes left no temp files
    assert paths["html"].stat().st_mode & 0o777 == 0o644


def test_skips_are_reported(tmp_path, tiny_model):
    (tmp_path / "probes").mkdir()
    _jsonl(tmp_path / "probes" / "target_probability.jsonl",
           [{"id": "a", "prompt": "Mira", "answer": " Pip"}])
    report = run_suite({"m": tiny_model}, load_suite(tmp_path))
    assert report.models["m"].scores["probability_familiarity"] is not None
    assert report.models["m"].scores["trivia_accuracy"] is None
    assert any(s.startswith("completion: target_completion.jsonl absent") for s in report.skipped)
    assert any(s.startswith("forget: no model named 'reference'") for s in report.skipped)


def test_audit_config_validation():
    with pytest.raises(ValueError, match="unknown measure"):
        AuditConfig(measures=("probability", "nope"))
    with pytest.raises(ValueError, match="judge"):
        AuditConfig(judge="gpt")
    assert "lm_eval" in AuditConfig(lm_eval_tasks=["x"]).measures
    from audits.general import GeneralConfig

    general = GeneralConfig()
    cfg = AuditConfig(limit=3, seed=7, general=general)
    assert cfg.general.max_windows == 3 and general.max_windows is None  # caller's copy intact
    assert cfg.completion.generation.seed == 7


def _run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_end_to_end_tiny(tmp_path, tiny_suite, model_dirs, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run_cli(
        ["run", *sum((["--model", f"{n}={d}"] for n, d in model_dirs.items()), []),
         "--suite", str(tiny_suite), "--out", str(out), "--limit", "2", "--seed", "0",
         "--max-new-tokens", "6", "--measures", "probability,trivia,general,forget"], capsys)
    assert code == 0, err
    data = json.loads((out / "report.json").read_text())
    assert data["suite"]["counts"]["target_probability"] == 2
    assert data["models"]["unlearned"]["scores"]["forget_quality"] is not None
    assert data["models"]["original"]["scores"]["completion_familiarity"] is None  # not asked
    assert (out / "report.html").exists() and "wrote" in stdout
    assert "audit" in err  # the tqdm bar goes to stderr


@pytest.mark.parametrize("args,needle", [
    (["--model", "original"], "expected NAME=PATH"),
    (["--model", "=x"], "expected NAME=PATH"),
    (["--model", "a=/no/such/dir"], "does not exist"),
    (["--model", "a=MODEL", "--model", "a=MODEL"], "duplicate model name(s): a"),
    (["--model", "a=MODEL", "--measures", "probability,bogus"], "unknown measure(s) bogus"),
    (["--model", "a=MODEL", "--limit", "0"], "positive integer"),
    (["--model", "a=MODEL", "--judge", "llm"], "AUDIT_JUDGE_BASE_URL"),
])
def test_cli_usage_errors_exit_2(args, needle, tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.delenv("AUDIT_JUDGE_BASE_URL", raising=False)
    args = [a.replace("MODEL", str(tiny_model_dir)) for a in args]
    code, _, err = _run_cli(["run", *args, "--out", str(tmp_path)], capsys)
    assert code == 2 and needle in err and "Traceback" not in err


def test_cli_module_entry_usage_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "audits", "run", "--model", "nopath",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert proc.returncode == 2 and "expected NAME=PATH" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_demo_models(tmp_path, capsys):
    from conftest import demo_model_dir

    baseline, reference = demo_model_dir("baseline"), demo_model_dir("reference")
    out = tmp_path / "demo"
    code, stdout, err = _run_cli(["run", "--model", f"original={baseline}", "--model",
                                  f"reference={reference}", "--suite", "demo", "--out", str(out),
                                  "--limit", "5"], capsys)
    assert code == 0, err
    data = json.loads((out / "report.json").read_text())
    for key in HEADLINE:
        assert isinstance(data["models"]["original"]["scores"][key], float), key
    assert isinstance(data["models"]["original"]["scores"]["forget_quality"], float)


@pytest.mark.browser
def test_html_report_renders_in_chromium(tiny_report, tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    _, paths, _ = tiny_report
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--headless"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(paths["html"].resolve().as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15000)
        n_plots = page.locator(".js-plotly-plot").count()
        n_bars = page.locator(".js-plotly-plot .bars path").count()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert n_plots == 4 and n_bars > 0 and not errors
    assert shot.stat().st_size > 10_000


def test_step_registry_covers_every_measure_and_headline():
    """One table: every measure but forget has steps, and HEADLINE is read off the steps."""
    assert {s.measure for s in STEPS} | {"forget"} == set(MEASURES)
    assert len({s.name for s in STEPS}) == len(STEPS)
    assert HEADLINE == (
        "completion_familiarity", "probability_familiarity", "probability_top1",
        "trivia_accuracy", "verbatim_rougeL", "general_accuracy", "general_cloze_accuracy",
        "general_perplexity", "neighbour_probability_familiarity", "neighbour_trivia_accuracy",
        "neighbour_completion_familiarity")  # the keys and order reports had, plus the cloze
