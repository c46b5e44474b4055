"""Names shared by the report, the CLI and the app (kept import-light: no torch here)."""

from __future__ import annotations

MEASURES = ("completion", "probability", "trivia", "verbatim", "general", "neighbour", "forget",
            "lm_eval")
DEFAULT_MEASURES = MEASURES[:-1]  # lm_eval only when tasks are given
HEADLINE = ("completion_familiarity", "probability_familiarity", "probability_top1",
            "trivia_accuracy", "verbatim_rougeL", "general_accuracy", "general_perplexity",
            "neighbour_probability_familiarity", "neighbour_trivia_accuracy",
            "neighbour_completion_familiarity")
# forget measures vs the reference / original (absent for the models they compare against)
FORGET_SCORES = ("privleak", "knowledge_gap_closed", "mia_auc", "truth_ratio",
                 "truth_ratio_forget_quality")
JUDGES = ("rule", "llm")
