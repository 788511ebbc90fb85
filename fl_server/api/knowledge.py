"""The API's door to the knowledge graph: cards in, SPARQL and the graph view out.

The database records which cards are published; the graph is derived from them. When the
graph is first needed it is opened (in memory by default, or from `kg_dir`) and brought in
line with the database: stored cards it lacks are added, withdrawn ones removed. Card
writes change the graph inside the database transaction that records them and undo the
change if that transaction fails, so the two never disagree.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from fl_server.api.errors import ApiError
from fl_server.api.schemas import GraphEdge, GraphNode, GraphOut, SparqlResult
from fl_server.api.settings import ApiSettings
from fl_server.db import Database
from fl_server.db.cards import decode_card
from fl_server.db.models import Dataset, Institution

if TYPE_CHECKING:
    from knowledge_graph.store import KnowledgeGraph

log = logging.getLogger("fedkg.api.knowledge")
EDGE_KINDS = {
    frozenset({"institution", "dataset"}): "publishes",
    frozenset({"dataset", "concept"}): "represents",
}


class KnowledgeUnavailable(RuntimeError):
    """The graph store cannot be opened (e.g. another process holds its directory)."""


class Knowledge:
    def __init__(self, db: Database, settings: ApiSettings) -> None:
        self.db = db
        self.settings = settings
        self._kg: KnowledgeGraph | None = None
        self._lock = threading.RLock()
        self.state = "idle"

    def _open(self) -> KnowledgeGraph:
        from knowledge_graph.errors import KGError
        from knowledge_graph.store import KnowledgeGraph

        try:
            kg = KnowledgeGraph.open(self.settings.kg_dir)
        except KGError as exc:
            self.state = "unavailable"
            raise KnowledgeUnavailable(f"the knowledge graph cannot be opened: {exc}") from None
        with self.db.read() as s:
            rows = s.execute(
                select(
                    Dataset.card,
                    Dataset.iri,
                    Dataset.withdrawn_at,
                    Institution.name,
                    Dataset.dataset_id,
                ).join(Institution, Institution.id == Dataset.institution_id)  # type: ignore[arg-type]
            ).all()
        present = set(kg.cards())
        for card_text, iri, withdrawn, institution, dataset_id in rows:
            try:
                if withdrawn is None and iri not in present:
                    kg.add_card(decode_card(card_text))
                elif withdrawn is not None and iri in present:
                    kg.remove_dataset(institution, dataset_id)
            except (KGError, ValueError) as exc:
                log.error(
                    "stored card %s/%s left out of the graph: %s", institution, dataset_id, exc
                )
        return kg

    @contextmanager
    def graph(self) -> Iterator[KnowledgeGraph]:
        """The graph, opened on first use; callers hold the lock while they use it."""
        with self._lock:
            if self._kg is None:
                self._kg = self._open()
                self.state = "ok"
            yield self._kg

    def close(self) -> None:
        """Release the graph (a store on disk is locked while open)."""
        with self._lock:
            if self._kg is not None:
                self._kg.close()
                self._kg = None
                self.state = "idle"

    def query(self, sparql: str, form: str) -> SparqlResult:
        """A read-only query within the time-out and result cap; 400 if the graph refuses it."""
        from knowledge_graph.errors import KGError

        limit = self.settings.sparql_limit
        with self.graph() as kg:
            try:
                result = kg.query(sparql, timeout_s=self.settings.sparql_timeout_s, limit=limit + 1)
            except KGError as exc:
                raise ApiError(400, "query_rejected", _one_line(exc)) from None
            return _to_result(result, form, limit)

    def view(self) -> GraphOut:
        """The planner's institutions–data sets–concepts graph in three columns, in [0, 1]²."""
        from knowledge_graph.planner import compatibility_graph

        with self.graph() as kg:
            g = compatibility_graph(kg)
        return layered_view(g)


MAX_ROWS = 30


def layered_view(g: Any) -> GraphOut:
    """Institutions in the first column, their data sets in the second, the concepts after
    (in as many columns as keep each under MAX_ROWS); columns evenly spaced over x in [0, 1],
    each sorted and spread over the height, so the same graph always gives the same picture."""
    kind = {str(n): str(d.get("kind", "concept")) for n, d in g.nodes(data=True)}
    label = {str(n): str(d.get("label") or _short(str(n))) for n, d in g.nodes(data=True)}
    publisher: dict[str, str] = {}
    for a, b in ((str(a), str(b)) for a, b in g.edges()):
        if kind[a] == "dataset" and kind[b] == "institution":
            a, b = b, a
        if kind[a] == "institution" and kind[b] == "dataset":
            publisher[b] = label[a]

    def members(*kinds: str) -> list[str]:
        return [n for n in kind if kind[n] in kinds]

    concepts = sorted(
        (n for n in kind if kind[n] not in ("institution", "dataset")), key=lambda n: label[n]
    )
    n_concept_columns = -(-len(concepts) // MAX_ROWS)
    per_column = -(-len(concepts) // n_concept_columns) if concepts else 0
    columns = [
        sorted(members("institution"), key=lambda n: label[n]),
        sorted(members("dataset"), key=lambda n: (publisher.get(n, ""), label[n])),
        *(concepts[c * per_column : (c + 1) * per_column] for c in range(n_concept_columns)),
    ]
    rows = max((len(column) for column in columns), default=0)
    nodes = [
        GraphNode(
            id=n,
            kind=kind[n],
            label=label[n],
            x=c / max(1, len(columns) - 1),
            y=(i + 0.5) / len(column),
        )
        for c, column in enumerate(columns)
        for i, n in enumerate(column)
    ]
    edges = [
        GraphEdge(
            source=str(a),
            target=str(b),
            kind=EDGE_KINDS.get(frozenset({kind[str(a)], kind[str(b)]}), "related"),
        )
        for a, b in sorted(g.edges(), key=lambda e: (str(e[0]), str(e[1])))
    ]
    return GraphOut(nodes=nodes, edges=edges, rows=rows)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _short(iri: str) -> str:
    return re.split(r"[/#]", iri.rstrip("/#"))[-1] or iri


def _term(value: Any) -> dict[str, str]:
    """One RDF term in the SPARQL 1.1 JSON results form."""
    from rdflib import BNode, Literal

    if isinstance(value, Literal):
        out = {"type": "literal", "value": str(value)}
        if value.language:
            out["xml:lang"] = value.language
        elif value.datatype:
            out["datatype"] = str(value.datatype)
        return out
    if isinstance(value, BNode):
        return {"type": "bnode", "value": str(value)}
    return {"type": "uri", "value": str(value)}


def _to_result(result: Any, form: str, limit: int) -> SparqlResult:
    if form == "ASK":
        return SparqlResult(form=form, head={}, boolean=bool(result.askAnswer))
    if form == "CONSTRUCT":
        from rdflib import Graph

        graph = result.graph
        truncated = len(graph) > limit
        if truncated:
            capped = Graph(namespace_manager=graph.namespace_manager)
            for i, triple in enumerate(graph):
                if i >= limit:
                    break
                capped.add(triple)
            graph = capped
        return SparqlResult(form=form, turtle=graph.serialize(format="turtle"), truncated=truncated)
    variables = [str(v) for v in (result.vars or [])]
    rows = list(result.bindings)
    bindings = [
        {str(var): _term(value) for var, value in row.items() if value is not None}
        for row in rows[:limit]
    ]
    return SparqlResult(
        form=form,
        head={"vars": variables},
        results={"bindings": bindings},
        truncated=len(rows) > limit,
    )
