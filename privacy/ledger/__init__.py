"""The institution's own record of every privacy charge, and its budgets per data set."""

from privacy.ledger.ledger import Ledger, Spend
from privacy.ledger.models import Budget, Charge

__all__ = ["Budget", "Charge", "Ledger", "Spend"]
