"""Errors an auditor meets; each message names what to change."""

from __future__ import annotations


class AuditError(ValueError):
    """The audit cannot run on these inputs (model, data, or settings)."""
