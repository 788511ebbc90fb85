"""The coordinator's tables.

They live in their own SQLAlchemy registry, apart from `SQLModel.metadata`, so that nothing
else in the process (an institution's privacy ledger, say) can create them by accident, and
so that Alembic compares exactly these tables with the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from fl_server.db.types import UTCDateTime, utcnow

GENESIS_HASH = "0" * 64

RUN_STATUSES = ("created", "running", "finished", "failed", "cancelled")


class CoordinatorTable(SQLModel, registry=registry()):
    """Base of every coordinator table (own metadata, see the module docstring)."""


class Institution(CoordinatorTable, table=True):
    """An organisation taking part; `name` is what its SuperNode reports as its identity."""

    __tablename__ = "institutions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    contact: str = Field(default="", max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(CoordinatorTable, table=True):
    """A credential: only the SHA-256 of its secret part is kept."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32, unique=True, index=True)
    secret_hash: str = Field(max_length=64)
    role: str = Field(max_length=16)  # "admin" | "institution"
    institution_id: int | None = Field(default=None, foreign_key="institutions.id", index=True)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Dataset(CoordinatorTable, table=True):
    """A data set an institution published; its card lives in the knowledge graph as `iri`."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("institution_id", "dataset_id"),)

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institutions.id", index=True)
    dataset_id: str = Field(max_length=128)
    iri: str = Field(max_length=500)
    title: str = Field(default="", max_length=500)
    modality: str = Field(default="", max_length=32)
    card: str = Field(sa_type=Text)
    card_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TaskRow(CoordinatorTable, table=True):
    """The task registry as the coordinator last saw it (kept for queries and history)."""

    __tablename__ = "tasks"

    name: str = Field(primary_key=True, max_length=64)
    modality: str = Field(max_length=32)
    description: str = Field(default="", sa_type=Text)
    purpose: str = Field(default="", max_length=200)
    columns: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    target: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Run(CoordinatorTable, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=64)
    task: str = Field(max_length=64, index=True)
    status: str = Field(default="created", max_length=16, index=True)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    total_rounds: int | None = None
    last_completed_round: int = 0
    final: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RunParticipant(CoordinatorTable, table=True):
    """Who a run involves; an institution sees a run only if it is listed here."""

    __tablename__ = "run_participants"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=64)
    institution: str = Field(primary_key=True, max_length=64, index=True)
    dataset: str = Field(default="", max_length=200)
    records: int | None = None


class RoundRow(CoordinatorTable, table=True):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("run_id", "round"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True, max_length=64)
    round: int
    metrics: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    train_metrics: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    clients: list[str] = Field(default_factory=list, sa_type=JSON)
    rejected: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    bytes_up: int = Field(default=0, sa_type=BigInteger)
    bytes_down: int = Field(default=0, sa_type=BigInteger)
    seconds: float = 0.0
    epsilon: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    per_client: dict[str, dict[str, float]] = Field(default_factory=dict, sa_type=JSON)
    he: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PrivacyCharge(CoordinatorTable, table=True):
    """One DP-SGD release an institution reports for its own data set in one round."""

    __tablename__ = "privacy_charges"
    __table_args__ = (UniqueConstraint("institution_id", "run_id", "round", "dataset"),)

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institutions.id", index=True)
    run_id: str = Field(foreign_key="runs.id", index=True, max_length=64)
    round: int
    dataset: str = Field(max_length=200)
    epsilon: float
    delta: float
    steps: int
    noise_multiplier: float
    sample_rate: float
    spent_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEntry(CoordinatorTable, table=True):
    """One line of the append-only log; `hash` covers the entry and the previous hash."""

    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=500)
    institution: str | None = Field(default=None, max_length=64, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(CoordinatorTable, table=True):
    """One row: the last entry's number and hash. Appends lock it, so the chain never forks."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(default=GENESIS_HASH, max_length=64)


metadata = CoordinatorTable.metadata
