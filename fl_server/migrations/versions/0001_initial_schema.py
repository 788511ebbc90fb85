"""Initial schema: institutions and keys, data sets, tasks, runs, rounds, privacy charges,
and the hash-chained audit log, made append-only by triggers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _str("hash", 64),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ts("at"),
        _str("actor", 200),
        _str("action", 64),
        _str("target", 500),
        _str("institution", 64, nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        _str("prev_hash", 64),
        _str("hash", 64),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_institution", "audit_log", ["institution"])

    op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("name", 64),
        _str("display_name", 200),
        _str("contact", 200),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_institutions_name", "institutions", ["name"], unique=True)

    op.create_table(
        "runs",
        _str("id", 64),
        _str("task", 64),
        _str("status", 16),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("total_rounds", sa.Integer(), nullable=True),
        sa.Column("last_completed_round", sa.Integer(), nullable=False),
        sa.Column("final", sa.JSON(), nullable=True),
        _str("created_by", 200),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_task", "runs", ["task"])

    op.create_table(
        "tasks",
        _str("name", 64),
        _str("modality", 32),
        sa.Column("description", sa.Text(), nullable=False),
        _str("purpose", 200),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("key_id", 32),
        _str("secret_hash", 64),
        _str("role", 16),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        _str("label", 200),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_keys_institution_id", "api_keys", ["institution_id"])
    op.create_index("ix_api_keys_key_id", "api_keys", ["key_id"], unique=True)

    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        _str("dataset_id", 128),
        _str("iri", 500),
        _str("title", 500),
        _str("modality", 32),
        sa.Column("card", sa.Text(), nullable=False),
        _str("card_sha256", 64),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("withdrawn_at", nullable=True),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_id", "dataset_id"),
    )
    op.create_index("ix_datasets_institution_id", "datasets", ["institution_id"])

    op.create_table(
        "privacy_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        _str("run_id", 64),
        sa.Column("round", sa.Integer(), nullable=False),
        _str("dataset", 200),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("noise_multiplier", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        _ts("spent_at"),
        _ts("recorded_at"),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_id", "run_id", "round", "dataset"),
    )
    op.create_index("ix_privacy_charges_institution_id", "privacy_charges", ["institution_id"])
    op.create_index("ix_privacy_charges_run_id", "privacy_charges", ["run_id"])

    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("run_id", 64),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("train_metrics", sa.JSON(), nullable=False),
        sa.Column("clients", sa.JSON(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("epsilon", sa.JSON(), nullable=False),
        sa.Column("per_client", sa.JSON(), nullable=False),
        sa.Column("he", sa.JSON(), nullable=False),
        _ts("recorded_at"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "round"),
    )
    op.create_index("ix_rounds_run_id", "rounds", ["run_id"])

    op.create_table(
        "run_participants",
        _str("run_id", 64),
        _str("institution", 64),
        _str("dataset", 200),
        sa.Column("records", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "institution"),
    )
    op.create_index("ix_run_participants_institution", "run_participants", ["institution"])

    op.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(
            genesis=GENESIS_HASH
        )
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on the audit log (and TRUNCATE on PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only';
            END
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in (
        "run_participants",
        "rounds",
        "privacy_charges",
        "datasets",
        "api_keys",
        "tasks",
        "runs",
        "institutions",
        "audit_log",
        "audit_head",
    ):
        op.drop_table(table)
