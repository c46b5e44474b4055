"""Plotly figures have the expected traces; evals.jsonl is read and plotted per (prompt, token)."""

from __future__ import annotations

import json

import pytest

from audits.plots import read_evals, scores_summary, topk_bars, tracked_tokens


def test_topk_bars_grouped_per_model():
    fig = topk_bars({"original": [(" magic", 0.22), (" the", 0.1)],
                     "unlearned": [(" the", 0.57), (" a", 0.05)]}, "Harry Potter studies")
    assert [t.name for t in fig.data] == ["original", "unlearned"]
    assert fig.layout.barmode == "group"
    assert list(fig.data[0].x) == ["␣the", "␣magic", "␣a"]  # ordered by best probability
    assert list(fig.data[0].y) == [0.1, 0.22, 0.0] and list(fig.data[1].y) == [0.57, 0.0, 0.05]
    assert "Harry Potter studies" in fig.layout.title.text
    fig = topk_bars({"a": [(" x", 0.5)]}, "p", answer=" magic", answer_probs={"a": 0.224})
    assert "' magic': a 0.224" in fig.layout.title.text


def test_read_and_plot_evals(tmp_path):
    path = tmp_path / "evals.jsonl"
    recs = [{"step": 20, "probability_familiarity": 0.05, "tracked": [
                {"prompt": "Mira studied", "token": " starcraft", "prob": 0.01},
                {"prompt": "Mira studied", "token": " the", "prob": 0.5}]},
            {"step": 10, "probability_familiarity": 0.1, "tracked": [
                {"prompt": "Mira studied", "token": " starcraft", "prob": 0.2},
                {"prompt": "Mira studied", "token": " the", "prob": 0.3}]}]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    records = read_evals(path)
    assert [r["step"] for r in records] == [10, 20]
    fig = tracked_tokens(records)
    assert len(fig.data) == 2
    by_name = {t.name: t for t in fig.data}
    star = by_name["Mira studied →␣starcraft"]
    assert list(star.x) == [10, 20] and list(star.y) == [0.2, 0.01]
    path.write_text('{"step": 1}\n{"nostep": 2}\n')
    with pytest.raises(ValueError, match=":2:"):
        read_evals(path)


def test_scores_summary_traces():
    fig = scores_summary({"original": {"probability_familiarity": 0.3, "trivia_accuracy": 0.9,
                                       "completion_familiarity": 1.5, "general_perplexity": 20.0,
                                       "verbatim_rougeL": None},
                          "unlearned": {"probability_familiarity": 0.01, "trivia_accuracy": 0.6,
                                        "completion_familiarity": 0.1,
                                        "general_perplexity": 22.0}})
    assert [t.name for t in fig.data] == ["original"] * 3 + ["unlearned"] * 3
    assert list(fig.data[0].x) == ["probability_familiarity", "trivia_accuracy"]
    assert list(fig.data[1].y) == [1.5] and list(fig.data[2].y) == [20.0]
    assert sum(t.showlegend for t in fig.data) == 2
    assert fig.data[0].marker.color == fig.data[2].marker.color != fig.data[3].marker.color
