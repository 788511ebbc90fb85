"""Errors a user can act on: each message names what to change."""


class DPError(ValueError):
    """A differential-privacy setting or model that cannot be used as given."""


class BudgetExceeded(RuntimeError):
    """Training would spend more privacy than the institution allowed for a data set."""
