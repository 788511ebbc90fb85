"""Errors the coordinator's records raise; each message names the fix."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """The database cannot be reached or brought to the current schema."""


class RecordError(ValueError):
    """A request would store something inconsistent; nothing was written."""


class NotFoundError(RecordError):
    """The record asked for does not exist (or is not visible to the caller)."""


class ConflictError(RecordError):
    """The record already exists or is in a state that forbids the change."""
