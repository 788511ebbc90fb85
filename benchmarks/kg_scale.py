"""How the knowledge graph scales: bulk-load throughput and planner-query latency, rdflib's
in-memory store (the baseline) vs the Oxigraph store fedkg uses, same data, same process,
printed as ratios.

Synthetic federations: banks publish credit-default cards and hospitals a tabular
(breast-cancer) and an image (digits) card, each in one of the three simulated house styles
(own names, German names, other units); one card in ten lacks a required concept and one in
twenty forbids the task's purpose, so the planner has to reject some. Every fifty
institutions ran a ten-round federation whose provenance is in the graph too. The
federation grows until the graph holds the target number of triples.

Measured per size:
- load: N-Quads text -> store. rdflib: `Dataset.parse`; Oxigraph, in memory and on disk:
  `KnowledgeGraph.import_data(trusted=True)` (pyoxigraph's bulk loader, then the store's
  rules deriving every card's eligibility);
- planner query: the one SPARQL query `plan_task` runs (median of repeats). rdflib:
  `Dataset.query`; Oxigraph on disk: `KnowledgeGraph.query` (parse, evaluate, rows as
  rdflib terms);
- plan_task end to end on Oxigraph (query + reading and aligning every member's card), and
  validated card ingestion (`add_card`: SHACL) for scale.

    .venv/bin/python benchmarks/kg_scale.py                          # 10k, 100k, 1M triples
    .venv/bin/python benchmarks/kg_scale.py --max-triples 200000     # quicker
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyoxigraph as ox
from rdflib import Dataset
from rich.console import Console
from rich.table import Table

from fl_client.tasks import get_task
from knowledge_graph.concepts import task_iri
from knowledge_graph.planner import CANDIDATES, plan_task
from knowledge_graph.provenance import record_model, record_round, record_run
from knowledge_graph.simulated import localize
from knowledge_graph.store import KnowledgeGraph
from knowledge_graph.vocab import ONTOLOGY_GRAPH, sparql_prefixes

TASKS = ("credit-default", "breast-cancer", "digits")
GOAL_QUERY_MS = 50.0
GOAL_LOAD = 100_000.0
_BNODE = re.compile(r"_:(\w+)")


def _templates() -> dict[str, list[str]]:
    """N-Quads of one institution per (kind, style, defect), as the store holds them."""
    kg = KnowledgeGraph.open(None)
    out: dict[str, list[str]] = {}
    for kind, tasks in (("bank", TASKS[:1]), ("hospital", TASKS[1:])):
        for style in range(3):
            for defect in ("ok", "thin", "closed"):
                key = f"{kind}-{style}-{defect}"
                for name in tasks:
                    task = get_task(name)
                    frame = task.reference_data().iloc[:40].reset_index(drop=True)
                    _, card = localize(frame, name, style, f"INST-{key}", 0)
                    card.dataset_id = f"{name}-DS"
                    if defect == "thin":
                        card.features = card.features[1:]
                    elif defect == "closed":
                        card.purposes = ["marketing"]
                    kg.add_card(card)
                out[key] = [ln for ln in kg.export("nquads").splitlines() if f"INST-{key}" in ln]
    return out


def _provenance_lines(run: int, institutions: list[str]) -> list[str]:
    kg = KnowledgeGraph.open(None)
    run_id = f"run-{run}"
    record_run(kg, run_id, "credit-default", {"rounds": 10})
    for rnd in range(1, 11):
        eps = {who: 0.1 * rnd for who in institutions}
        record_round(kg, run_id, rnd, institutions, eps, {"accuracy": 0.7, "auc": 0.75})
        record_model(kg, run_id, f"round-{rnd}", rnd)
    return kg.export("nquads").splitlines()


def synthetic_nquads(target: int, templates: dict[str, list[str]]) -> tuple[str, int, int]:
    """N-Quads of a federation of about `target` triples (vocabulary included)."""
    kg = KnowledgeGraph.open(None)
    onto = [
        q
        for q in kg.export("nquads", include_ontology=True).splitlines()
        if f"<{ONTOLOGY_GRAPH}>" in q
    ]
    lines = list(onto)
    n = 0
    recent: list[str] = []
    while len(lines) < target:
        kind = "bank" if n % 2 == 0 else "hospital"
        defect = "thin" if n % 10 == 9 else "closed" if n % 20 == 7 else "ok"
        key = f"{kind}-{n % 3}-{defect}"
        name = f"{kind}-{n}"
        for line in templates[key]:
            lines.append(_BNODE.sub(rf"_:\1x{n}", line.replace(f"INST-{key}", name)))
        recent.append(name)
        n += 1
        if n % 50 == 0:
            lines += (
                _BNODE.sub(rf"_:\1r{n}", ln) for ln in _provenance_lines(n // 50, recent[:20])
            )
            recent = []
    return "\n".join(lines) + "\n", len(lines), n


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _load(directory: Path | None, data: str) -> tuple[KnowledgeGraph, float]:
    kg = KnowledgeGraph.open(directory)
    started = time.perf_counter()
    kg.import_data(data, "nquads", trusted=True)
    return kg, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-triples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=21, help="planner-query repeats (Oxigraph)")
    args = parser.parse_args()
    console = Console(width=160)
    sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= args.max_triples]
    if args.max_triples not in sizes:
        sizes.append(args.max_triples)
    query = CANDIDATES.format(task=task_iri("credit-default"))
    templates = _templates()
    table = Table(title="knowledge graph at scale: rdflib Memory (baseline) vs Oxigraph (fedkg)")
    for col in (
        "triples",
        "institutions",
        "load/s rdflib",
        "load/s Oxigraph memory",
        "load/s Oxigraph disk",
        "query ms rdflib",
        "query ms Oxigraph disk",
        "plan_task ms",
        "members",
    ):
        table.add_column(col, justify="right")
    last: dict[str, float] = {}
    for size in sizes:
        data, triples, institutions = synthetic_nquads(size, templates)
        gc.collect()
        t0 = time.perf_counter()
        mem = Dataset(default_union=True)
        mem.parse(data=data, format="nquads")
        rdflib_load = triples / (time.perf_counter() - t0)
        mem_reps = 5 if triples <= 200_000 else 2
        rdflib_members = len(mem.query(sparql_prefixes() + query))
        rdflib_ms = median_ms(lambda m=mem: list(m.query(sparql_prefixes() + query)), mem_reps)
        del mem
        gc.collect()
        in_memory, seconds = _load(None, data)
        memory_load = triples / seconds
        in_memory.close()
        del in_memory
        gc.collect()
        with tempfile.TemporaryDirectory() as tmp:
            kg, seconds = _load(Path(tmp) / "kg", data)
            disk_load = triples / seconds
            oxi_members = len(kg.query(query, limit=10**7))
            oxi_ms = median_ms(lambda k=kg: k.query(query, limit=10**7), args.repeats)
            plan_ms = median_ms(lambda k=kg: plan_task(k, "credit-default"), 1)
            members = len(plan_task(kg, "credit-default").members)
            kg.close()
        assert rdflib_members == oxi_members == members, (rdflib_members, oxi_members, members)
        table.add_row(
            f"{triples:,}",
            f"{institutions:,}",
            f"{rdflib_load:,.0f}",
            f"{memory_load:,.0f} ({memory_load / rdflib_load:.1f}×)",
            f"{disk_load:,.0f} ({disk_load / rdflib_load:.1f}×)",
            f"{rdflib_ms:,.1f}",
            f"{oxi_ms:,.1f} ({rdflib_ms / oxi_ms:.0f}× faster)",
            f"{plan_ms:,.0f}",
            f"{members:,}",
        )
        last = {"triples": triples, "memory": memory_load, "disk": disk_load, "query": oxi_ms}
        console.print(f"{triples:,} triples measured")
    console.print(table)
    with tempfile.TemporaryDirectory() as tmp:
        raw = ox.Store(str(Path(tmp) / "raw"))
        started = time.perf_counter()
        raw.bulk_load(data.encode(), format=ox.RdfFormat.N_QUADS)
        ceiling = last["triples"] / (time.perf_counter() - started)
        del raw
    console.print(
        f"pyoxigraph's own on-disk bulk_load of the same {last['triples']:,.0f} triples alone: "
        f"{ceiling:,.0f} triples/s (the disk column's ceiling on this machine)"
    )
    with tempfile.TemporaryDirectory() as tmp, KnowledgeGraph.open(Path(tmp) / "kg") as kg:
        task = get_task("digits")
        frame = task.reference_data().iloc[:40]
        cards = [localize(frame, task.name, i, f"hospital-{i}", 0)[1] for i in range(10)]
        started = time.perf_counter()
        for card in cards:
            kg.add_card(card)
        per_card = 1000 * (time.perf_counter() - started) / len(cards)
    console.print(
        f"validated ingestion (add_card with SHACL, 64-column card): {per_card:.0f} ms per card"
    )
    verdict = {True: "meets", False: "MISSES"}
    console.print(
        f"at {last['triples']:,.0f} triples: planner query {last['query']:.1f} ms median "
        f"({verdict[last['query'] <= GOAL_QUERY_MS]} ≤ {GOAL_QUERY_MS:.0f} ms); load "
        f"{last['memory']:,.0f} triples/s in memory ({verdict[last['memory'] >= GOAL_LOAD]} "
        f"≥ {GOAL_LOAD:,.0f}), {last['disk']:,.0f} on disk ({verdict[last['disk'] >= GOAL_LOAD]})"
    )


if __name__ == "__main__":
    main()
