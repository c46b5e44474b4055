"""What each report score means: a readable name, its range, which direction is "forgot more"
or "kept more", and one line of explanation (for the app's table and the report's readers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreInfo:
    """How to read one score."""

    name: str  # readable name
    range: str  # e.g. "0-1"
    direction: str  # e.g. "lower = forgot more"
    explain: str  # one line
    digits: int = 3  # decimals shown


SCORES: dict[str, ScoreInfo] = {
    "completion_familiarity": ScoreInfo(
        "Completion familiarity (target)", "0-5", "lower = forgot more",
        "Completions of target prompts graded 0-3 by the judge: (5 x #grade-3 + #grade-2) / N."),
    "probability_familiarity": ScoreInfo(
        "Answer probability (target)", "0-1", "lower = forgot more",
        "Mean probability of the story's answer right after a target prompt."),
    "probability_top1": ScoreInfo(
        "Answer is top-1 (target)", "0-1", "lower = forgot more",
        "Fraction of target prompts where greedy decoding gives the story's answer."),
    "trivia_accuracy": ScoreInfo(
        "Trivia accuracy (target)", "0-1", "lower = forgot more (0.5 = chance)",
        "Two-choice trivia: the story's answer has the higher likelihood."),
    "verbatim_rougeL": ScoreInfo(
        "Verbatim recall, ROUGE-L (target)", "0-1", "lower = forgot more",
        "Greedy continuation of a passage of the target text vs the true continuation."),
    "general_accuracy": ScoreInfo(
        "General accuracy", "0-1", "higher = kept more ability",
        "General multiple-choice items (argmax of the option likelihood); on the demo, the "
        "next word of everyday text against three words seen after the same word."),
    "general_cloze_accuracy": ScoreInfo(
        "General cloze accuracy", "0-1", "higher = kept more ability",
        "Next word of held-out everyday text, open vocabulary: the word's first token is the "
        "model's most likely next token."),
    "general_perplexity": ScoreInfo(
        "General perplexity", ">= 1", "lower = kept more ability",
        "Perplexity on held-out everyday text; a rise means unlearning hurt the model.", 2),
    "neighbour_probability_familiarity": ScoreInfo(
        "Answer probability (neighbour)", "0-1", "higher = kept more",
        "As the target's, on a neighbouring story the model should keep."),
    "neighbour_trivia_accuracy": ScoreInfo(
        "Trivia accuracy (neighbour)", "0-1", "higher = kept more (0.5 = chance)",
        "As the target's, on the neighbouring story."),
    "neighbour_completion_familiarity": ScoreInfo(
        "Completion familiarity (neighbour)", "0-5", "higher = kept more",
        "As the target's, on the neighbouring story."),
    "forget_quality": ScoreInfo(
        "Forget quality (KS p-value)", "0-1", "higher = closer to never having seen it",
        "p-value of a KS test of the model's answer probabilities vs the reference model's "
        "(TOFU). The reference itself has none (blank); 0.000 = clearly distinguishable.", 4),
    "forget_ks_statistic": ScoreInfo(
        "Forget KS statistic", "0-1", "lower = closer to the reference",
        "The KS distance behind forget quality (0 = same distribution as the reference)."),
}


def describe(key: str) -> ScoreInfo:
    """The info of `key`, or a plain one for a score not listed (e.g. an lm-eval task)."""
    return SCORES.get(key) or ScoreInfo(key.replace("_", " "), "", "", "")


def rounded(key: str, value: float | None) -> float | None:
    """`value` rounded to the score's digits (None stays None)."""
    return None if value is None else round(float(value), describe(key).digits)
