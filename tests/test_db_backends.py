"""The coordinator's database on SQLite and on PostgreSQL, and the fixture other modules use.

`database_url` yields a fresh, empty database per test: a SQLite file, and (when
FEDKG_TEST_POSTGRES_URL is set, which CI does through scripts/ci_services.sh) a private
schema in that PostgreSQL database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from fl_server.db import Database, DatabaseError, resolve_url
from fl_server.db.models import metadata

POSTGRES_ENV = "FEDKG_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_ENV} is not set on CI; run scripts/ci_services.sh first")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'coordinator.db'}"
        return
    base = postgres_url()
    if not base:
        pytest.skip(f"{POSTGRES_ENV} not set (scripts/ci_services.sh sets up PostgreSQL)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(resolve_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = resolve_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def test_migrations_create_exactly_the_models_schema(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []
        tables = set(inspect(conn).get_table_names())
    assert set(metadata.tables) | {"alembic_version"} == tables


def test_migrating_again_is_a_no_op_and_keeps_data(db: Database) -> None:
    from fl_server.db.institutions import create_institution

    with db.write() as s:
        create_institution(s, "bank-a", actor="test")
    Database(str(db.url.render_as_string(hide_password=False))).dispose()  # migrates again
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM institutions")).scalar() == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_a_failed_write_leaves_nothing_behind(db: Database) -> None:
    from fl_server.db.institutions import create_institution

    with pytest.raises(RuntimeError), db.write() as s:
        create_institution(s, "bank-a", actor="test")
        raise RuntimeError("crash half-way")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM institutions")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
        assert conn.execute(text("SELECT seq FROM audit_head")).scalar() == 0


def test_postgres_urls_get_the_installed_driver() -> None:
    assert resolve_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"


def test_database_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FEDKG_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert make_url(str(resolve_url())).database == str(tmp_path / "x.db")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://u:p@h/db", "unsupported database"),
        ("::not a url::", "cannot parse"),
    ],
)
def test_unusable_urls_are_refused_with_the_fix(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseError, match=fragment):
        resolve_url(url)


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    with pytest.raises(DatabaseError) as info:
        Database("postgresql://fedkg:s3cret-pw@127.0.0.1:1/nothing")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "127.0.0.1:1" in message and "FEDKG_DATABASE_URL" in message
