"""`fl-client budget`: the institution's privacy ledger, and its budgets per data set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from privacy.dp import DPError
from privacy.ledger import Ledger

console = Console()


def default_ledger() -> Path:
    return Path(os.environ.get("FEDKG_LEDGER", Path.home() / ".fedkg" / "ledger.db"))


def budget_command(
    ledger: Annotated[
        Path | None,
        typer.Option(help="ledger file (default: $FEDKG_LEDGER or ~/.fedkg/ledger.db)"),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="only this data set; with --limit, set its budget")
    ] = None,
    limit: Annotated[
        float | None, typer.Option(help="set the data set's epsilon budget (all runs together)")
    ] = None,
    delta: Annotated[float, typer.Option(help="the budget's delta, with --limit")] = 1e-5,
) -> None:
    """Show every privacy charge and what is left per data set; or set a data set's budget."""
    path = ledger or default_ledger()
    if limit is None and not path.exists():
        console.print(
            f"[red]error:[/] {path}: no ledger yet; it is created at the first private round"
        )
        raise typer.Exit(2)
    book = Ledger(path)
    try:
        if limit is not None:
            if dataset is None:
                console.print("[red]error:[/] --limit needs --dataset NAME")
                raise typer.Exit(2)
            try:
                book.set_budget(dataset, limit, delta)
            except DPError as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(2) from None
            console.print(f"budget for [cyan]{dataset}[/]: ε ≤ {limit:g} at δ = {delta:g}")
        _print(book, dataset)
    finally:
        book.close()


def _print(book: Ledger, only: str | None) -> None:
    budgets = Table(title=f"privacy budgets ({book.path})")
    for col in ("data set", "budget ε", "δ", "spent ε", "left ε", "charges"):
        budgets.add_column(col, justify="right" if col != "data set" else "left")
    for s in book.summary():
        if only and s.dataset != only:
            continue
        b = s.budget
        budgets.add_row(
            s.dataset,
            f"{b.epsilon:g}" if b else "-",
            f"{b.delta:g}" if b else "-",
            f"{s.spent:.3f}",
            f"{max(b.epsilon - s.spent, 0.0):.3f}" if b else "-",
            str(s.charges),
        )
    console.print(budgets)
    charges = Table(title="charges")
    for col in (
        "time (UTC)",
        "data set",
        "run",
        "round",
        "σ",
        "q",
        "steps",
        "run ε",
        "total ε",
        "δ",
    ):
        charges.add_column(col)
    for c in book.charges(only):
        charges.add_row(
            c.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.dataset,
            c.run_id,
            str(c.round),
            f"{c.noise_multiplier:.3f}",
            f"{c.sample_rate:.4f}",
            str(c.steps),
            f"{c.run_epsilon:.3f}",
            f"{c.dataset_epsilon:.3f}",
            f"{c.delta:g}",
        )
    console.print(charges)
