"""Shareable links of Side by side: the prompt and settings as URL query parameters.

The browser builds the link (`SHARE_JS`, from the page's own address, so it is right behind any
proxy); `parse_share` reads it back on page load, checking every value (a bad one is skipped
with a message, never half-applied).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ui.streaming import MODES

TEMPLATES = ("auto", "llama2", "plain", "none")
# query key -> (type, low, high) in the order of the Side by side inputs; None = no bounds
SHARE_KEYS: dict[str, tuple] = {
    "prompt": (str, None, None), "mode": (str, None, None), "max_new": (int, 1, 512),
    "temperature": (float, 0.0, 2.0), "top_p": (float, 0.05, 1.0), "top_k": (int, 0, 200),
    "rep": (float, 1.0, 2.0), "seed": (int, 0, 2**63 - 1), "template": (str, None, None),
    "system": (str, None, None), "k": (int, 1, 50), "terms": (str, None, None),
}
MAX_TEXT = 4000  # characters of prompt / system prompt taken from a link

SHARE_JS = "(...values) => {\n  const keys = " + json.dumps(list(SHARE_KEYS)) + """;
  const url = new URL(window.location.href);
  url.search = "";
  url.hash = "";
  keys.forEach((key, i) => {
    const v = values[i];
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(key, String(v));
  });
  return url.toString();
}"""


def parse_share(params: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """`(values, problems)`: the known, valid parameters of a share link, and why others were
    skipped. Unknown keys (e.g. Gradio's own `__theme`) are ignored silently."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for key, (kind, low, high) in SHARE_KEYS.items():
        raw = params.get(key)
        if raw is None:
            continue
        try:
            value = kind(float(raw)) if kind is int else kind(raw)
        except (TypeError, ValueError, OverflowError):
            problems.append(f"{key}={raw[:40]!r} is not a {kind.__name__}")
            continue
        if kind is str:
            if len(value) > MAX_TEXT:
                problems.append(f"{key} is longer than {MAX_TEXT} characters")
                continue
            if key == "mode" and value not in MODES:
                problems.append(f"mode must be one of {', '.join(MODES)}")
                continue
            if key == "template" and value not in TEMPLATES:
                problems.append(f"template must be one of {', '.join(TEMPLATES)}")
                continue
        elif not low <= value <= high:
            problems.append(f"{key}={value} is outside {low}..{high}")
            continue
        values[key] = value
    return values, problems
