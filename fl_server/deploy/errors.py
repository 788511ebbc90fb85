"""Errors of the deployment tooling; each message names the fix."""

from __future__ import annotations


class DeployError(RuntimeError):
    """A deployment step cannot go on: a file, a process, a port or a peer is not right."""


class ConfigError(DeployError, ValueError):
    """A configuration file or option holds a value the deployment cannot use."""
