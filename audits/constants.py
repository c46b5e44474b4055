"""Names shared by the report, the CLI and the app (kept import-light: no torch here)."""

from __future__ import annotations

MEASURES = ("completion", "probability", "trivia", "verbatim", "general", "neighbour", "forget",
            "lm_eval")
DEFAULT_MEASURES = MEASURES[:-1]  # lm_eval only when tasks are given
JUDGES = ("rule", "llm")
