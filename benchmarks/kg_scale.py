"""How the knowledge graph scales: load throughput and planner-query latency, rdflib's
in-memory store vs Oxigraph (the store fedkg uses), same data, same process, as ratios.

Synthetic federations: N simulated banks, each with one credit-default card (about 160
triples), grown until the graph holds the target number of triples; a tenth of the cards
lack a required concept so the planner has work to do.

    .venv/bin/python benchmarks/kg_scale.py                         # up to 200k triples
    .venv/bin/python benchmarks/kg_scale.py --max-triples 1000000
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyoxigraph as ox
from rdflib import Dataset
from rich.console import Console
from rich.table import Table

from fl_client.tasks import get_task
from knowledge_graph.cards import ontology
from knowledge_graph.concepts import task_iri
from knowledge_graph.planner import CANDIDATES
from knowledge_graph.simulated import localize
from knowledge_graph.vocab import ONTOLOGY_GRAPH, sparql_prefixes


def synthetic_nquads(target: int) -> tuple[str, int, int]:
    """N-Quads of enough cards to reach `target` triples, one named graph per card."""
    task = get_task("credit-default")
    df = task.reference_data().iloc[:50]
    templates = []
    for variant in range(3):
        _, card = localize(df, task.name, variant, f"template-{variant}", 0)
        templates.append(card)
    lines: list[str] = []
    onto = ontology()
    for s, p, o in onto:
        lines.append(f"{s.n3()} {p.n3()} {o.n3()} <{ONTOLOGY_GRAPH}> .")
    cards = 0
    while len(lines) < target:
        card = templates[cards % 3]
        card.institution = f"bank-{cards}"
        card.dataset_id = f"loans-{cards}"
        if cards % 10 == 9:
            card = type(card)(**{**card.__dict__, "features": card.features[1:]})
        g = card.to_graph()
        name = card.iri
        for s, p, o in g:
            lines.append(f"{s.n3()} {p.n3()} {o.n3()} <{name}> .")
        cards += 1
    return "\n".join(lines) + "\n", len(lines), cards


def time_queries(run, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-triples", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= args.max_triples] or [args.max_triples]
    query = sparql_prefixes() + CANDIDATES.format(task=task_iri("credit-default"))
    table = Table(title="knowledge graph at scale: rdflib Memory vs Oxigraph")
    for col in (
        "triples",
        "cards",
        "load rdflib (triples/s)",
        "load Oxigraph (triples/s)",
        "load ratio",
        "plan rdflib (ms)",
        "plan Oxigraph (ms)",
        "plan speed-up",
        "members",
    ):
        table.add_column(col, justify="right")
    for size in sizes:
        data, triples, cards = synthetic_nquads(size)
        t0 = time.perf_counter()
        mem = Dataset(default_union=True)
        mem.parse(data=data, format="nquads")
        mem_load = triples / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        store = ox.Store()
        store.bulk_load(data.encode(), format=ox.RdfFormat.N_QUADS)
        oxi_load = triples / (time.perf_counter() - t0)
        oxi_members = len(list(store.query(query, use_default_graph_as_union=True)))
        oxi_ms = 1000 * time_queries(
            lambda s=store: list(s.query(query, use_default_graph_as_union=True)), args.repeats
        )
        mem_reps = args.repeats if size <= 100_000 else 1
        mem_members = len(list(mem.query(query)))
        mem_ms = 1000 * time_queries(lambda m=mem: list(m.query(query)), mem_reps)
        assert mem_members == oxi_members, (mem_members, oxi_members)
        table.add_row(
            f"{triples:,}",
            f"{cards:,}",
            f"{mem_load:,.0f}",
            f"{oxi_load:,.0f}",
            f"{oxi_load / mem_load:.1f}x",
            f"{mem_ms:,.1f}",
            f"{oxi_ms:,.1f}",
            f"{mem_ms / oxi_ms:.0f}x",
            f"{oxi_members:,}",
        )
        console.print(f"{triples:,} triples done")
    console.print(table)


if __name__ == "__main__":
    main()
