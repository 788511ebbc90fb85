"""`fl-client`: what an institution runs next to its data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fl_client.cli_audit import audit as audit_command
from fl_client.cli_budget import budget_command
from fl_client.cli_keys import keys_app
from fl_client.cli_node import register as register_node_commands
from fl_client.data import DataError, FeatureMapping, load_table, prepare
from fl_client.tasks import UnknownTaskError, get_task, list_tasks

app = typer.Typer(
    help="The institution's side of fedkg, run next to its data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.command("budget")(budget_command)
app.command("audit")(audit_command)
register_node_commands(app)
console = Console()


@app.command("tasks")
def tasks_command(
    name: Annotated[str | None, typer.Argument(help="show one task's expected columns")] = None,
) -> None:
    """List the tasks the federation can train, or the columns one task expects."""
    if name is None:
        table = Table(title="tasks")
        for col in ("task", "modality", "classes", "columns", "description"):
            table.add_column(col)
        for t in list_tasks():
            table.add_row(
                t.name,
                t.modality,
                "/".join(t.schema.classes),
                str(len(t.schema.columns)),
                t.description,
            )
        console.print(table)
        return
    try:
        task = get_task(name)
    except UnknownTaskError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"{task.name}: expected columns (target: {task.schema.target.name})")
    for col in ("column", "kind", "unit", "categories"):
        table.add_column(col)
    for c in (*task.schema.columns, task.schema.target):
        table.add_row(c.name, c.kind, c.unit or "", ", ".join(c.categories))
    console.print(table)


@app.command("check")
def check_command(
    data: Annotated[Path, typer.Option(help="the institution's CSV or Parquet file")],
    task: Annotated[str, typer.Option(help="task the data is for")],
    mapping: Annotated[
        Path | None, typer.Option(help="feature mapping JSON (from the knowledge graph)")
    ] = None,
) -> None:
    """Check a local data file against a task's schema, without sending anything anywhere."""
    try:
        t = get_task(task)
        fm = FeatureMapping.from_json(mapping.read_text()) if mapping else None
        df = load_table(data, t.schema, fm)
        local = prepare(df, t.schema)
    except (DataError, UnknownTaskError, OSError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    counts = df[t.schema.target.name].value_counts().to_dict()
    console.print(
        f"[green]ok[/] {data}: {len(df)} records fit task [cyan]{t.name}[/] "
        f"({local.x_train.shape[1:]} features); labels: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
