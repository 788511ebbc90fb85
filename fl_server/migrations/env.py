"""Alembic environment for the coordinator's database.

The coordinator calls `upgrade head` itself (`Database.migrate`) and hands its connection in;
run by hand (`alembic -c fl_server/migrations/alembic.ini ...`) it uses $FEDKG_DATABASE_URL.
"""

from __future__ import annotations

from alembic import context

from fl_server.db.models import metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from fl_server.db.engine import Database

    db = Database(migrate=False)
    try:
        with db.write_engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
_main()
