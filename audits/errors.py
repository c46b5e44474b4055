"""Exceptions raised by the audits, each with a message a user can act on."""

from __future__ import annotations


class AuditError(RuntimeError):
    """An audit could not run (bad input, missing data, unreachable service)."""


class ProbeError(AuditError, ValueError):
    """A probe file is invalid; the message names the file, line and field."""


class JudgeError(AuditError):
    """A judge could not grade (e.g. the LLM endpoint is unreachable); names the URL."""
