"""The one progress adapter: `unlearn.runtime.Progress` events onto a `gr.Progress`-like bar."""

from __future__ import annotations

from ui.progress import describe, fraction, progress_callback
from unlearn.runtime import Progress


def test_fraction_maps_a_subtask_onto_its_share_of_the_bar():
    assert fraction(Progress("audit", 3, 4)) == 0.75
    assert fraction(Progress("audit", 1, 2), start=0.5, span=0.5) == 0.75
    assert fraction(Progress("audit", 0, 0), start=0.5, span=0.5) == 1.0  # nothing to do: done
    assert fraction(Progress("embedding", 0, None), start=0.25) == 0.25  # unknown total
    assert fraction(Progress("audit", 9, 4)) == 1.0  # never past the end


def test_describe_keeps_label_message_and_count():
    assert describe(Progress("audit", 2, 8, message="orig: trivia"), "audits") == \
        "audits: orig: trivia 2/8"
    assert describe(Progress("sample", 1, 4, message="sample"), "") == "sample 1/4"
    assert describe(Progress("embedding", 0, None, message="embedding 3"), "") == "embedding 3"


def test_callback_feeds_the_bar_and_swallows_its_errors():
    seen = []
    cb = progress_callback(lambda f, desc="": seen.append((f, desc)), "attacks", 0.5, 0.5)
    cb(Progress("adversarial", 1, 4, message="m: lens"))
    assert seen == [(0.625, "attacks: m: lens 1/4")]

    def broken(f, desc=""):
        raise RuntimeError("bar gone")

    progress_callback(broken, "x")(Progress("audit", 1, 1))  # cosmetic: must not raise
