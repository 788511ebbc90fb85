"""`fl-server` commands that work on the database directly (run on the coordinator's machine)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_server.cli import app
from fl_server.db import Database
from fl_server.db.institutions import authenticate

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'coordinator.db'}"


def _key(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("fedkg_"))


def _who(url: str, token: str) -> str | None:
    db = Database(url)
    with db.read() as s:
        who = authenticate(s, token)
    db.dispose()
    return None if who is None else (who.institution or who.role)


def test_create_institution_prints_a_working_key_once(url: str) -> None:
    result = runner.invoke(app, ["admin", "create-institution", "bank-a", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert _who(url, _key(result.output)) == "bank-a"
    again = runner.invoke(app, ["admin", "create-institution", "bank-a", "--database-url", url])
    assert again.exit_code == 2
    assert "already exists" in again.output and "Traceback" not in again.output


def test_admin_tokens_and_key_rotation(url: str) -> None:
    admin = _key(runner.invoke(app, ["admin", "create-token", "--database-url", url]).output)
    assert _who(url, admin) == "admin"
    first = _key(
        runner.invoke(app, ["admin", "create-institution", "bank-a", "--database-url", url]).output
    )
    second = _key(
        runner.invoke(app, ["admin", "rotate-key", "bank-a", "--database-url", url]).output
    )
    assert _who(url, first) is None and _who(url, second) == "bank-a"
    missing = runner.invoke(app, ["admin", "rotate-key", "bank-zz", "--database-url", url])
    assert missing.exit_code == 2 and "no institution named 'bank-zz'" in missing.output


def test_ingest_then_status(url: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "banks"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(
        json.dumps(
            {
                "config": {
                    "scenario": "banks",
                    "task": "credit-default",
                    "rounds": 1,
                    "run_id": "r-1",
                },
                "rounds": [
                    {
                        "round": 1,
                        "metrics": {"accuracy": 0.7125, "loss": 0.61},
                        "clients": ["bank-a"],
                        "rejected": {"bank-b": "no reply within 60 s"},
                        "bytes_up": 1234,
                        "bytes_down": 5678,
                    }
                ],
                "final": {"accuracy": 0.7125},
            }
        )
    )
    ingested = runner.invoke(app, ["ingest", str(tmp_path / "results"), "--database-url", url])
    assert (
        ingested.exit_code == 0
        and "run r-1 (1 rounds)" in ingested.output
        and "imported" in ingested.output
    )
    listing = runner.invoke(app, ["status", "--database-url", url])
    assert listing.exit_code == 0
    assert "r-1" in listing.output and "finished" in listing.output and "0.713" in listing.output
    one = runner.invoke(app, ["status", "r-1", "--database-url", url])
    assert one.exit_code == 0 and "round 1: bank-b left out: no reply within 60 s" in one.output
    assert "5,678" in one.output
    unknown = runner.invoke(app, ["status", "nope", "--database-url", url])
    assert unknown.exit_code == 2 and "no run 'nope'" in unknown.output


def test_user_errors_are_one_line_with_the_fix(url: str, tmp_path: Path) -> None:
    empty = runner.invoke(app, ["ingest", str(tmp_path), "--database-url", url])
    assert empty.exit_code == 2 and "make demo" in empty.output
    bad = runner.invoke(app, ["status", "--database-url", "mysql://x@y/z"])
    assert bad.exit_code == 2 and "unsupported database" in bad.output
    assert "Traceback" not in empty.output + bad.output
    missing = runner.invoke(app, ["dashboard", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "make demo" in missing.output


def test_serving_on_a_busy_port_names_the_option(url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = runner.invoke(app, ["api", "--port", str(port), "--database-url", url])
    assert result.exit_code == 2 and "pass another --port" in result.output
