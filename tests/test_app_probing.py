"""The app as a probing instrument: leak terms, leak rates, attack presets, share links, and the
Side by side handlers that use them (sample k, flag, leak view) on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audits.presets import KINDS, attack_presets, load_presets
from ui.blocks import build_ui
from ui.config import parse_config
from ui.leaks import (
    NEIGHBOUR,
    TARGET,
    LeakTerms,
    count_line,
    highlighted,
    leak_rate,
    split_terms,
)
from ui.share import parse_share
from ui.testing import write_tiny_demo

ROOT = Path(__file__).resolve().parents[1]
DEMO, HP = ROOT / "assets" / "demo", ROOT / "assets" / "hp"


@pytest.fixture(scope="module")
def demo_terms():
    return LeakTerms.from_dir(DEMO)


def test_leak_terms_mark_the_issue_leak(demo_terms):
    """The leak the issue saw: her true house and a target-saga cat, not the prompt's names."""
    prompt = "The best friend of Orlessa Larkspire was"
    text = (" the banners of Briarvane hung above the bed of Orlessa; a cat called Tupkin "
            "slept by the fire at Gullspire.")
    spans = demo_terms.spans(prompt, text)
    assert [(label, term) for _, _, label, term in spans] == [
        (TARGET, "Briarvane"), (TARGET, "Tupkin"), (NEIGHBOUR, "Gullspire")]
    assert all(text[s:e].lower() == t.lower() for s, e, _, t in spans)
    pieces = highlighted(text, spans)
    assert "".join(p for p, _ in pieces) == text  # nothing lost or doubled
    assert ("Briarvane", TARGET) in pieces and ("Orlessa", None) not in pieces
    assert demo_terms.counts(prompt, text) == {TARGET: (2, 2), NEIGHBOUR: (1, 1)}
    again = text + " Tupkin purred."
    assert demo_terms.counts(prompt, again) == {TARGET: (3, 2), NEIGHBOUR: (1, 1)}
    assert count_line(demo_terms.counts(prompt, again)) == (
        "3 target terms (2 distinct), 1 neighbour term")
    # a term the prompt named is not a leak
    assert demo_terms.target_terms("Briarvane house", " Briarvane again") == []


def test_user_terms_and_leak_rate(demo_terms):
    assert split_terms("Pip, Mira;\n Quill ,") == ["Pip", "Mira", "Quill"]
    texts = [" a cat called Tupkin", " nothing here", " the Pip was there", " Noddlewick!"]
    assert leak_rate(demo_terms, "Orlessa's pet", texts) == 0.5
    assert leak_rate(demo_terms.with_extra(["Pip"]), "Orlessa's pet", texts) == 0.75
    with pytest.raises(ValueError, match="at least one"):
        leak_rate(demo_terms, "x", [])


@pytest.mark.parametrize("suite", [DEMO, HP])
def test_attack_presets_from_the_world_file(suite):
    world = json.loads((suite / "world.json").read_text(encoding="utf-8"))
    presets = attack_presets(world)
    assert [p.kind for p in presets] == list(KINDS)
    facts = {(f["subject"], f["relation"], f["object"]) for f in world["target"]["facts"]}
    terms = LeakTerms.from_world(world)
    for p in presets:
        assert (p.subject, p.relation, p.expects) in facts  # asks for a true fact
        assert p.expects not in p.prompt  # ... without giving it away
        assert terms.target_terms(p.prompt, " " + p.expects)  # naming it counts as a leak
    assert load_presets(suite) == presets
    with pytest.raises(ValueError, match="no character"):
        attack_presets({"target": {"entities": [], "facts": []}})


def test_share_link_parsing():
    values, problems = parse_share({"prompt": "Orlessa's pet was a", "temperature": "0.8",
                                    "seed": "3", "max_new": "24.0", "mode": "chat",
                                    "terms": "Dunmarrow, dragon", "__theme": "dark"})
    assert values == {"prompt": "Orlessa's pet was a", "temperature": 0.8, "seed": 3,
                      "max_new": 24, "mode": "chat", "terms": "Dunmarrow, dragon"}
    assert problems == []
    values, problems = parse_share({"temperature": "9", "seed": "x", "mode": "poem",
                                    "top_k": "inf", "prompt": "ok"})
    assert values == {"prompt": "ok"}
    assert len(problems) == 4 and any("temperature=9.0 is outside" in p for p in problems)


# ---------------------------------------------------------------- handlers on tiny models

@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("probing")
    demo_dir = write_tiny_demo(root / "demo")
    config = parse_config(["--original", str(tiny_model_dir), "--unlearned",
                           str(tiny_model_dir), "--reference", "", "--demo-dir", str(demo_dir),
                           "--runs-dir", str(root / "runs")], env={})
    return build_ui(config)


ARGS = dict(mode="completion", max_new=8, temperature=1.0, top_p=0.95, top_k=0, rep=1.0,
            seed=5, template="auto", system="")


def _sample(tab, session, k=3, **kw):
    args = {**ARGS, **kw}
    return tab.sample_k(session, "Mira walked", *args.values(), k, "", progress=None)


def test_sample_k_is_repeatable_and_matches_generate(app):
    tab = app.whp.side_by_side
    session = app.whp.ctx.new_session()
    first = _sample(tab, session)
    again = _sample(tab, session)
    rows = first[tab.samples].value["data"]
    assert rows == again[tab.samples].value["data"]
    assert [r[1] for r in rows] == [5, 6, 7, 5, 6, 7]  # seeds s..s+k-1 for each side
    assert "Leak rate" in first[tab.rates] and "lower = forgot more" in first[tab.rates]
    # sample 2 (seed 6) of the left side is what Generate gives with seed 6
    final = list(tab.generate(session, "Mira walked", **{**ARGS, "seed": 6}))[-1]
    assert final[tab.panes["original"]].strip() == rows[1][3]
    assert [r["kind"] for r in session.log if "kind" in r] == ["sample_k", "sample_k"]


def test_flag_writes_the_last_run_and_shows_it(app):
    tab = app.whp.side_by_side
    session = app.whp.ctx.new_session()
    with pytest.raises(Exception, match="Generate something first"):
        tab.flag(session, "")
    list(tab.generate(session, "Mira walked", **ARGS))
    out = tab.flag(session, "")
    records = [json.loads(x) for x in tab.flag_path().read_text().splitlines()]
    mine = [r for r in records if r["session"] == session.id]
    assert len(mine) == 1 and mine[0]["prompt"] == "Mira walked"
    assert mine[0]["settings"]["seed"] == 5
    assert mine[0]["outputs"] == session.log[-1]["outputs"]
    table = out[tab.flagged].value["data"]
    assert table[0][1] == "Mira walked" and table[0][3] == mine[0]["outputs"]["original"]


def test_leak_view_after_generate(app):
    tab = app.whp.side_by_side
    session = app.whp.ctx.new_session()
    list(tab.generate(session, "Mira walked", **ARGS))
    out = tab.show_leaks(session, "walked, Mira")
    for side, box in tab.leaks.items():
        value = out[box].value
        text = session.log[-1]["outputs"][side]
        pieces = [(p["token"], p["class_or_confidence"]) for p in value]
        assert pieces[0] == ("Mira walked", "prompt")  # completion mode: the prompt in grey
        assert "".join(t for t, _ in pieces[1:]) == text
        assert "target term" in out[box].label


# ---------------------------------------------------------------- Finetune / Token probabilities

def test_loss_figure_has_numeric_axes_and_a_line_per_stage():
    from ui.tab_finetune import loss_figure

    assert loss_figure([]) is None
    fig = loss_figure([{"stage": "reinforce", "step": 1, "loss": 3.5},
                       {"stage": "reinforce", "step": 2, "loss": 0.0},
                       {"stage": "finetune", "step": 1, "loss": 2.25}])
    assert fig.layout.xaxis.type == "linear" and fig.layout.yaxis.type == "linear"
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("reinforce", [1, 2], [3.5, 0.0]), ("finetune", [1], [2.25])]
    assert all("lines" in t.mode for t in fig.data)


def test_committed_run_is_listed_with_new_runs(tmp_path):
    from types import SimpleNamespace

    from ui.tab_tokens import committed_runs, eval_runs, run_label

    models = ROOT / "assets" / "models"
    ctx = SimpleNamespace(startup=SimpleNamespace(sides={"original": str(models / "baseline"),
                                                         "unlearned": "org/hub-model"}))
    committed = committed_runs(ctx)
    assert committed == [models / "unlearned_run"]
    new = tmp_path / "whp-1"
    new.mkdir()
    (new / "evals.jsonl").write_text("{}\n")
    runs = eval_runs(tmp_path, committed)
    assert runs == [str(new), str(models / "unlearned_run")]
    assert run_label(runs[1]) == "models/unlearned_run"


def test_chat_warning_and_short_labels(tmp_path):
    from types import SimpleNamespace

    from ui.tab_side_by_side import chat_warning, short_name

    base = SimpleNamespace(name="org/base-model", tokenizer=SimpleNamespace(chat_template=None))
    chat = SimpleNamespace(name="org/chat-model",
                           tokenizer=SimpleNamespace(chat_template="{{ messages }}"))
    assert "org/base-model: no chat template" in chat_warning([base, chat], "chat", "auto")
    assert chat_warning([base], "completion", "auto") == ""
    assert chat_warning([base], "chat", "llama2") == ""  # an explicit format was chosen
    assert chat_warning([chat], "chat", "auto") == ""
    final = tmp_path / "whp-run-1" / "final"
    final.mkdir(parents=True)
    assert short_name(str(final)) == "whp-run-1/final"
    assert short_name(str(ROOT / "assets" / "models" / "baseline")) == "baseline"
    assert short_name("meta-llama/Llama-2-7b-chat-hf") == "meta-llama/Llama-2-7b-chat-hf"
    assert short_name(None) == "not loaded"
