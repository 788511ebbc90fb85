"""`fl-kg`: the federation's knowledge graph — cards, plans, queries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fl_client.tasks import UnknownTaskError, get_task, list_tasks
from knowledge_graph.cards import load_card, validate_card
from knowledge_graph.concepts import column_concept, scheme_of
from knowledge_graph.errors import KGError
from knowledge_graph.store import KnowledgeGraph

app = typer.Typer(
    help="The federation's knowledge graph: data set cards, who can train what, provenance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="graph directory (default: $FEDKG_KG_DIR or ~/.fedkg/kg)"),
]


def store_dir(path: Path | None) -> Path:
    """--store, else $FEDKG_KG_DIR, else ~/.fedkg/kg."""
    if path is not None:
        return path.expanduser()
    env = os.environ.get("FEDKG_KG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".fedkg" / "kg"


def _store(path: Path | None, create: bool = False) -> KnowledgeGraph:
    where = store_dir(path)
    if not create and not where.exists():
        raise KGError(
            f"no knowledge graph at {where}; add a card first (fl-kg add CARD --store {where}) "
            "or point --store / FEDKG_KG_DIR at an existing one"
        )
    return KnowledgeGraph.open(where)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


@app.command("validate")
def validate_command(
    card: Annotated[Path, typer.Argument(help="card file (YAML or JSON-LD)")],
) -> None:
    """Check a card against the shapes; every problem on one line with its fix."""
    try:
        problems = validate_card(load_card(card))
    except KGError as exc:
        _fail(str(exc))
        return
    if problems:
        for p in problems:
            err.print(f"[red]✗[/] {escape(p)}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"[green]valid[/] {card}")


@app.command("add")
def add_command(
    card: Annotated[Path, typer.Argument(help="card file")], store: StoreOption = None
) -> None:
    """Validate and store a card (replaces the institution's earlier card for that data set)."""
    try:
        c = load_card(card)
        with _store(store, create=True) as kg:
            iri = kg.add_card(c)
    except KGError as exc:
        _fail(str(exc))
        return
    console.print(f"[green]stored[/] {iri}")


@app.command("remove")
def remove_command(
    institution: Annotated[str, typer.Argument()],
    dataset: Annotated[str, typer.Argument(help="the card's dataset id")],
    store: StoreOption = None,
) -> None:
    """Withdraw one institution's card for one data set; other cards stay."""
    try:
        with _store(store) as kg:
            kg.remove_dataset(institution, dataset)
    except KGError as exc:
        _fail(str(exc))
        return
    console.print(f"removed {dataset} of {institution}")


@app.command("plan")
def plan_command(
    task: Annotated[str, typer.Argument(help="task name")], store: StoreOption = None
) -> None:
    """Which institutions can join TASK, with each one's column mapping; who cannot, and why."""
    from knowledge_graph.planner import plan_task

    try:
        get_task(task)
        with _store(store) as kg:
            plan = plan_task(kg, task)
    except (KGError, UnknownTaskError) as exc:
        _fail(str(exc))
        return
    table = Table(title=f"{task}: who can join")
    for col in ("institution", "data set", "renamed", "unit conversions", "recoded"):
        table.add_column(col)
    for m in plan.members:
        rules = m.mapping.rules.items()
        table.add_row(
            m.institution,
            m.dataset_id,
            str(sum(r.source != k for k, r in rules)),
            ", ".join(
                f"{r.source}×{r.scale:g}" + (f"{r.offset:+g}" if r.offset else "")
                for _, r in rules
                if r.scale != 1.0 or r.offset
            )
            or "-",
            str(sum(bool(r.recode) for _, r in rules)),
        )
    console.print(table)
    for who, why in sorted(plan.excluded.items()):
        console.print(f"[yellow]{escape(who)}[/] cannot join: {escape(why)}")
    if not plan.members:
        raise typer.Exit(1)


@app.command("query")
def query_command(
    sparql: Annotated[
        str,
        typer.Argument(
            help="a SELECT/ASK/CONSTRUCT/DESCRIBE query (prefixes fk:, dcat:, prov:, ... predefined)"
        ),
    ],
    store: StoreOption = None,
    limit: Annotated[int, typer.Option(help="most rows to print")] = 1000,
    timeout: Annotated[float, typer.Option(help="seconds before the query is abandoned")] = 10.0,
) -> None:
    """Run a read-only SPARQL query; updates are refused."""
    try:
        with _store(store) as kg:
            res = kg.query(sparql, timeout_s=timeout, limit=limit)
            if res.type == "ASK":
                console.print(str(bool(res.askAnswer)).lower())
                return
            if res.type in ("CONSTRUCT", "DESCRIBE"):
                console.print(res.graph.serialize(format="turtle"))  # type: ignore[union-attr]
                return
            table = Table()
            for v in res.vars or []:
                table.add_column(str(v))
            for row in res:
                table.add_row(*("" if x is None else str(x) for x in row))  # type: ignore[union-attr]
            console.print(table)
    except KGError as exc:
        _fail(str(exc))


@app.command("export")
def export_command(
    store: StoreOption = None,
    fmt: Annotated[
        str, typer.Option("--format", help="turtle, trig, nquads or json-ld")
    ] = "turtle",
    ontology: Annotated[bool, typer.Option(help="include the vocabulary and concepts")] = False,
) -> None:
    """Print the graph (cards and provenance)."""
    try:
        with _store(store) as kg:
            print(kg.export(fmt, include_ontology=ontology))
    except KGError as exc:
        _fail(str(exc))


_SUFFIX_FORMATS = {
    ".ttl": "turtle",
    ".trig": "trig",
    ".nq": "nquads",
    ".nt": "nt",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="RDF file (Turtle, TriG, N-Quads, N-Triples, JSON-LD)")
    ],
    store: StoreOption = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="default: from the file's extension")
    ] = None,
    graph: Annotated[
        str | None, typer.Option(help="put everything into this one named graph (replacing it)")
    ] = None,
    trusted: Annotated[
        bool, typer.Option(help="a dump fl-kg exported: skip card validation, bulk-load")
    ] = False,
) -> None:
    """Load cards and provenance from an export (or another graph); cards are validated."""
    try:
        kind = fmt or _SUFFIX_FORMATS.get(file.suffix.lower())
        if kind is None:
            raise KGError(f"{file}: cannot tell the format from the name; pass --format")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise KGError(f"{file}: cannot read it ({exc.strerror})") from None
        with _store(store, create=True) as kg:
            n = kg.import_data(data, kind, graph, trusted=trusted)
    except KGError as exc:
        _fail(str(exc))
        return
    console.print(f"imported {n:,} triples from {file}")


@app.command("concepts")
def concepts_command(
    task: Annotated[str | None, typer.Argument(help="only this task's")] = None,
) -> None:
    """The shared concepts a card's columns can represent (as `scheme:name`)."""
    table = Table(title="concepts")
    for col in ("concept", "task", "kind", "unit"):
        table.add_column(col)
    for t in list_tasks():
        if task and t.name != task:
            continue
        for c in (*t.schema.columns, t.schema.target):
            column_concept(t, c.name)
            table.add_row(f"{scheme_of(t)}:{c.name}", t.name, c.kind, c.unit or "")
    console.print(table)
