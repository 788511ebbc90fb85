"""Where the coordinator's records live: a SQLite file by default, PostgreSQL by URL.

SQLite is driven with explicit transactions: reads begin deferred, writes begin IMMEDIATE so
that concurrent writers queue for the lock instead of failing half-way through. Every
connection enforces foreign keys and uses the write-ahead log, so a reader never blocks the
writer and a crash of any process leaves the last committed state.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from fl_server.db.errors import DatabaseError

DATABASE_URL_ENV = "FEDKG_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///fedkg-coordinator.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every coordinator process.
_PG_MIGRATION_LOCK = 0x6665646B67


def resolve_url(url: str | None = None) -> URL:
    """The URL given, else $FEDKG_DATABASE_URL, else a SQLite file in the working directory."""
    raw = (url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL).strip()
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise DatabaseError(
            f"cannot parse database URL {raw.split('@')[-1]!r}; use sqlite:///path/to/file.db "
            "or postgresql://user:password@host:5432/dbname"
        ) from None
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError(
                "an in-memory SQLite database vanishes with its connection; give a file, "
                "e.g. sqlite:///fedkg-coordinator.db"
            )
    elif parsed.get_backend_name() != "postgresql":
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r}; use sqlite:/// or postgresql://"
        )
    return parsed


def display_url(url: URL | str) -> str:
    """The URL without its password, for messages and logs."""
    return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)


def _sqlite_engine(url: URL, begin: str) -> Engine:
    Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30.0}, pool_size=8
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, explicitly
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """Engines and sessions for one database; `migrate=True` brings its schema to head first."""

    def __init__(self, url: str | URL | None = None, *, migrate: bool = True) -> None:
        self.url = resolve_url(url) if not isinstance(url, URL) else url
        self.display_url = display_url(self.url)
        self.backend = self.url.get_backend_name()
        try:
            if self.backend == "sqlite":
                self.engine = _sqlite_engine(self.url, "BEGIN")
                self.write_engine = _sqlite_engine(self.url, "BEGIN IMMEDIATE")
            else:
                self.engine = create_engine(
                    self.url, pool_pre_ping=True, pool_size=8, max_overflow=8
                )
                self.write_engine = self.engine
        except (NoSuchModuleError, ImportError) as exc:
            raise DatabaseError(
                f"no driver for {self.display_url}: {exc}; install fedkg[server]"
            ) from None
        if migrate:
            self.migrate()

    def _unreachable(self, exc: SQLAlchemyError) -> DatabaseError:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return DatabaseError(
            f"cannot use the database at {self.display_url}: {reason}; start it or point "
            f"--database-url / ${DATABASE_URL_ENV} at a reachable one"
        )

    def migrate(self) -> None:
        """Alembic `upgrade head`, serialised across processes by a database lock."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        try:
            with self.write_engine.connect() as connection, connection.begin():
                if self.backend == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    def check(self) -> None:
        """Raise DatabaseError unless a trivial query answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closing it ends its transaction, objects stay usable."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        with Session(self.write_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
