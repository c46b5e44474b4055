"""Gradio app: the original and the unlearned model side by side, and a tab per audit/tool.

`python app.py` starts on the embedded demo models (CPU, offline); `python app.py --help` lists
the flags (each also readable from a WHP_<FLAG> environment variable). On a Hugging Face Space
this file is the `app_file`.
"""

from __future__ import annotations

import logging
import sys

from ui.blocks import build_ui, launch, make_context
from ui.config import parse_config

__all__ = ["build_ui", "main"]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = parse_config(argv)
    except ValueError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    # the page is served at once; the models load in the background (ui.blocks.make_context)
    launch(build_ui(config, make_context(config, background=True)), config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
