"""Audits: measure what a model knows about a target, and what it can still do."""
