"""Unlearning in LLMs: the "Who's Harry Potter" method, its variants and baselines."""

__version__ = "0.1.0"
