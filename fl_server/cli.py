"""`fl-server`: what the coordinating organisation runs.

Secrets are printed once, to the operator's terminal, and never logged.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fl_server.cli_deploy import register as register_deployment_commands
from fl_server.db import Database, DatabaseError, RecordError

app = typer.Typer(
    help="The coordinator: API + dashboard, institutions, run records, audit log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
admin_app = typer.Typer(
    help="Institutions and keys (run on the coordinator's machine).", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
register_deployment_commands(app)  # certs, start, register-node, run
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///file.db or postgresql://user:pw@host/db (default: $FEDKG_DATABASE_URL, "
        "else sqlite:///fedkg-coordinator.db)",
        show_default=False,
    ),
]
ACTOR = "cli"


def _guard(fn: Callable[[], T]) -> T:
    """User errors as one line on stderr and exit code 2, no traceback."""
    try:
        return fn()
    except (DatabaseError, RecordError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _db(url: str | None) -> Database:
    return _guard(lambda: Database(url))


# --- serving ---------------------------------------------------------------------------


def _port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise RecordError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port"
            ) from None


def _serve(db: Database, host: str, port: int, kg_dir: Path | None, max_body: int) -> None:
    import uvicorn

    from fl_server.api import ApiSettings, create_app

    settings = ApiSettings.from_env(
        database_url=str(db.url), kg_dir=kg_dir, max_body_bytes=max_body
    )
    application = create_app(settings, db=db)
    uvicorn.run(application, host=host, port=port, log_level="info", server_header=False)


def _ingest(db: Database, results: Path) -> None:
    from fl_server.db.ingest import ingest_results

    for item in _guard(lambda: ingest_results(db, results)):
        state = "imported" if item.changed else "already up to date"
        cards = f"; {item.cards} data set cards published" if item.cards else ""
        console.print(
            f"run [cyan]{item.run_id}[/] ({item.rounds} rounds) from {item.source}: {state}{cards}"
        )


@app.command("api")
def api_command(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    database_url: DatabaseUrl = None,
    results: Annotated[
        Path | None, typer.Option(help="import this results directory (fl-sim output) first")
    ] = None,
    kg_dir: Annotated[
        Path | None,
        typer.Option(help="keep the knowledge graph here (default: $FEDKG_KG_DIR, else in memory)"),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body accepted")] = 1_000_000,
) -> None:
    """Serve the API and the dashboard (migrates the database to the current schema first)."""
    db = _db(database_url)
    if results is not None:
        _ingest(db, results)
    _guard(lambda: _port_free(host, port))
    console.print(f"database: {db.display_url}")
    console.print(
        f"dashboard: http://{host}:{port}/dashboard/   API reference: http://{host}:{port}/docs"
    )
    _serve(db, host, port, kg_dir, max_body_bytes)


@app.command("dashboard")
def dashboard_command(
    results: Annotated[
        Path, typer.Argument(help="the results directory, e.g. results/ after `make demo`")
    ],
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
) -> None:
    """Import a results directory into RESULTS/coordinator.db and open its dashboard.

    Prints a URL carrying a key that works until this command stops.
    """
    from fl_server.db.institutions import create_admin_key, revoke_key
    from fl_server.db.keys import parse_key

    if not results.is_dir():
        err.print(f"[red]error:[/] {results} is not a directory; run `make demo` first")
        raise typer.Exit(2)
    db = _db(f"sqlite:///{(results / 'coordinator.db').resolve()}")
    _ingest(db, results)
    _guard(lambda: _port_free(host, port))

    def issue() -> str:
        with db.write() as s:
            return create_admin_key(s, actor=ACTOR, label="dashboard session")

    token = _guard(issue)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    console.print(
        f"\n[bold green]Dashboard:[/] http://{shown}:{port}/dashboard/#token={token}\n"
        "Open it in a browser; the key in the link stops working when you stop this command "
        "(Ctrl+C).\n"
    )
    try:
        _serve(db, host, port, None, 1_000_000)
    finally:
        key_id = (parse_key(token) or ("", ""))[0]
        with db.write() as s:
            revoke_key(s, key_id, actor=ACTOR)


@app.command("ingest")
def ingest_command(
    results: Annotated[
        Path, typer.Argument(help="a results directory, a run's directory, or a metrics.json")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Import finished simulations (metrics.json) so the API and dashboard show them."""
    _ingest(_db(database_url), results)


# --- status ----------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


@app.command("status")
def status_command(
    run_id: Annotated[str | None, typer.Argument(help="show this run's rounds")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Runs and their progress, or one run's rounds."""
    from sqlalchemy import select

    from fl_server.db.models import RoundRow, Run
    from fl_server.db.runs import get_run, latest_metrics

    db = _db(database_url)
    if run_id is None:
        with db.read() as s:
            runs = list(s.scalars(select(Run).order_by(Run.created_at.desc())))  # type: ignore[attr-defined]
            last = latest_metrics(s, [r.id for r in runs])
        table = Table(title=f"runs in {db.display_url}")
        for col in ("run", "scenario", "task", "status", "rounds", "accuracy", "updated"):
            table.add_column(col)
        for run in runs:
            table.add_row(
                run.id,
                str(run.config.get("scenario", "")),
                run.task,
                run.status,
                f"{run.last_completed_round}/{run.total_rounds or '?'}",
                _fmt(last.get(run.id, {}).get("accuracy")),
                run.updated_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table if runs else "no runs recorded yet")
        return
    with db.read() as s:
        run = _guard(lambda: get_run(s, run_id))
        rounds = list(
            s.scalars(select(RoundRow).where(RoundRow.run_id == run_id).order_by(RoundRow.round))
        )
    table = Table(title=f"run {run.id} · {run.task} · {run.status}")
    for col in ("round", "accuracy", "loss", "contributors", "rejected", "bytes up", "bytes down"):
        table.add_column(col)
    for r in rounds:
        table.add_row(
            str(r.round),
            _fmt(r.metrics.get("accuracy")),
            _fmt(r.metrics.get("loss"), 4),
            ", ".join(r.clients),
            ", ".join(r.rejected),
            f"{r.bytes_up:,}",
            f"{r.bytes_down:,}",
        )
    console.print(table)
    for r in rounds:
        for who, why in r.rejected.items():
            console.print(f"round {r.round}: {who} left out: {why}")


# --- admin -----------------------------------------------------------------------------


@admin_app.command("create-institution")
def create_institution_command(
    name: Annotated[str, typer.Argument(help="the name its SuperNode reports (lowercase)")],
    display_name: Annotated[str, typer.Option(help="a readable name")] = "",
    contact: Annotated[str, typer.Option(help="who to call about it")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Register an institution and print its API key (shown only this once)."""
    from fl_server.db.institutions import create_institution

    db = _db(database_url)

    def work() -> str:
        with db.write() as s:
            _, token = create_institution(
                s, name, actor=ACTOR, display_name=display_name, contact=contact
            )
            return token

    token = _guard(work)
    console.print(f"institution [cyan]{name}[/] registered. Its API key (shown only now):")
    print(token)


@admin_app.command("create-token")
def create_token_command(
    label: Annotated[str, typer.Option(help="what the key is for")] = "admin",
    database_url: DatabaseUrl = None,
) -> None:
    """Issue an admin API key (shown only this once)."""
    from fl_server.db.institutions import create_admin_key

    db = _db(database_url)

    def work() -> str:
        with db.write() as s:
            return create_admin_key(s, actor=ACTOR, label=label)

    token = _guard(work)
    console.print("admin API key (shown only now):")
    print(token)


@admin_app.command("rotate-key")
def rotate_key_command(
    name: Annotated[str, typer.Argument(help="the institution")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an institution's keys and print a new one."""
    from fl_server.db.institutions import rotate_key

    db = _db(database_url)

    def work() -> str:
        with db.write() as s:
            return rotate_key(s, name, actor=ACTOR)

    token = _guard(work)
    console.print(f"new API key for [cyan]{name}[/] (earlier keys no longer work):")
    print(token)


# --- audit -----------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify_command(
    database_url: DatabaseUrl = None,
    expect_head: Annotated[
        str | None, typer.Option(help="a head hash noted earlier; the log must still contain it")
    ] = None,
) -> None:
    """Recompute the hash chain; exit 1 if any entry was changed, removed or reordered."""
    from sqlalchemy import select

    from fl_server.db import audit
    from fl_server.db.models import AuditEntry

    db = _db(database_url)
    with db.read() as s:
        report = audit.verify(s)
        anchored = (
            expect_head is None
            or s.scalars(select(AuditEntry.seq).where(AuditEntry.hash == expect_head)).first()
            is not None
        )
    if not anchored:
        report.problems.append(f"no entry has the hash {expect_head}; the log was rewritten")
    if report.ok and anchored:
        console.print(
            f"[green]ok[/] {report.entries} entries, chain intact; head {report.head_hash}"
        )
        return
    err.print(f"[red]audit log tampered:[/] {len(report.problems)} problem(s)")
    for problem in report.problems:
        err.print(f"  - {problem}")
    raise typer.Exit(1)
