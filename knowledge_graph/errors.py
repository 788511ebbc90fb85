"""Errors a user can act on: each message names the card field or query part and the fix."""


class KGError(ValueError):
    """A knowledge-graph operation refused; the store is unchanged."""


class CardError(KGError):
    """A data set card that cannot be read or does not validate."""


class PlanError(KGError):
    """No federation can be planned for a task; the message names what each institution lacks."""
