"""The ledger's two tables: what an institution allowed, and what it spent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel, UniqueConstraint


def _now() -> datetime:
    return datetime.now(UTC)


class Budget(SQLModel, table=True):
    """The most privacy an institution lets all runs together spend on one data set."""

    __tablename__ = "budget"

    dataset: str = Field(primary_key=True)
    epsilon: float
    delta: float
    accountant: str = "prv"
    updated_at: datetime = Field(default_factory=_now)


class Charge(SQLModel, table=True):
    """One round's DP-SGD release, written before its update leaves the institution."""

    __tablename__ = "charge"
    __table_args__ = (UniqueConstraint("dataset", "run_id", "round"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset: str = Field(index=True)
    run_id: str = Field(index=True)
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    accountant: str
    run_epsilon: float  # the run's epsilon at `delta`, this round included
    dataset_epsilon: float  # every run on the data set, at the budget's delta
    created_at: datetime = Field(default_factory=_now)
