"""The audit log: append-only, hash-chained, and `fl-server audit verify` notices tampering."""

from __future__ import annotations

import itertools
import threading

import pytest
import test_db_backends as backends
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from fl_server.cli import app
from fl_server.db import Database
from fl_server.db import audit as audit_log
from fl_server.db.models import GENESIS_HASH

database_url = backends.database_url  # the fixture, shared with test_db_backends
db = backends.db


def _append(db: Database, n: int, actor: str = "test") -> None:
    for i in range(n):
        with db.write() as s:
            audit_log.append(
                s, actor=actor, action="thing.done", target=f"thing:{i}", detail={"i": i, "x": 0.1}
            )


def _drop_guards(db: Database) -> None:
    """What an attacker with the database owner's rights could do first."""
    with db.write_engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def _tamper(db: Database, sql: str) -> None:
    _drop_guards(db)
    with db.write_engine.begin() as conn:
        conn.execute(text(sql))


def _verify(db: Database) -> audit_log.AuditReport:
    with db.read() as s:
        return audit_log.verify(s)


def test_entries_link_into_a_chain_that_verifies(db: Database) -> None:
    _append(db, 5)
    with db.read() as s:
        rows = s.execute(text("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    report = _verify(db)
    assert report.ok and report.entries == 5 and report.head_hash == rows[-1].hash


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_the_database_refuses_to_change_or_delete_entries(db: Database, sql: str) -> None:
    _append(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.write_engine.begin() as conn:
        conn.execute(text(sql))
    assert _verify(db).ok and _verify(db).entries == 2


def test_an_edited_entry_is_detected(db: Database) -> None:
    _append(db, 4)
    _tamper(db, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    report = _verify(db)
    assert not report.ok
    assert any("entry 3" in p and "altered" in p for p in report.problems)


def test_a_rewritten_hash_breaks_the_next_link(db: Database) -> None:
    _append(db, 4)
    _tamper(db, "UPDATE audit_log SET hash = '" + "f" * 64 + "' WHERE seq = 2")
    problems = _verify(db).problems
    assert any("entry 2" in p for p in problems) and any(
        "entry 3 does not link" in p for p in problems
    )


def test_a_deleted_entry_is_detected(db: Database) -> None:
    _append(db, 4)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    problems = _verify(db).problems
    assert any("entries 2..2 are missing" in p for p in problems)


def test_entries_cut_from_the_end_are_detected(db: Database) -> None:
    _append(db, 4)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 4")
    problems = _verify(db).problems
    assert any("removed from the end" in p for p in problems)


def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            _append(db, 8, actor=name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(db)
    assert report.ok and report.entries == 32


def test_cli_verify_passes_then_reports_tampering(db: Database) -> None:
    url = db.url.render_as_string(hide_password=False)
    _append(db, 3)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert ok.exit_code == 0 and "3 entries, chain intact" in ok.output
    head = _verify(db).head_hash
    assert (
        runner.invoke(
            app, ["audit", "verify", "--database-url", url, "--expect-head", head]
        ).exit_code
        == 0
    )

    _tamper(db, "UPDATE audit_log SET target = 'thing:99' WHERE seq = 1")
    bad = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert bad.exit_code == 1
    assert "entry 1 (thing.done) was altered" in bad.output


def test_cli_verify_notices_a_log_rewritten_from_scratch(db: Database) -> None:
    url = db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app, ["audit", "verify", "--database-url", url, "--expect-head", "a" * 64]
    )
    assert result.exit_code == 1 and "was rewritten" in result.output
