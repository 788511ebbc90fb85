"""The shared graph: rdflib over a persistent Oxigraph store, one named graph per card.

Each card lives in its own named graph (the data set's IRI), so an institution can replace
or withdraw one card without touching anyone else's; the ontology, concepts and
provenance have graphs of their own. Queries see the union.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rdflib import Dataset, Graph, URIRef
from rdflib.plugins.sparql import prepareQuery
from rdflib.query import Result

from knowledge_graph.cards import Card, check_card, ontology
from knowledge_graph.errors import KGError
from knowledge_graph.vocab import ONTOLOGY_GRAPH, PREFIXES, dataset_iri, sparql_prefixes

READ_ONLY = {"SelectQuery", "AskQuery", "ConstructQuery", "DescribeQuery"}


class KnowledgeGraph:
    def __init__(self, ds: Dataset, directory: Path | None) -> None:
        self.ds = ds
        self.directory = directory
        self._lock = threading.RLock()
        for p, ns in PREFIXES.items():
            ds.bind(p, ns)

    @classmethod
    def open(cls, directory: Path | str | None = None) -> KnowledgeGraph:
        """A persistent store in `directory` (created if missing), or in memory for None."""
        ds = Dataset(store="Oxigraph", default_union=True)
        path = Path(directory).expanduser() if directory is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                ds.open(str(path), create=not path.exists())
            except OSError as exc:
                raise KGError(
                    f"{path}: cannot open the graph store ({exc}); is another process using it?"
                ) from None
        kg = cls(ds, path)
        kg._ensure_ontology()
        return kg

    def close(self) -> None:
        if self.directory is not None:
            self.ds.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _ensure_ontology(self) -> None:
        g = self.ds.graph(ONTOLOGY_GRAPH)
        if len(g) == 0:
            self._replace(ONTOLOGY_GRAPH, ontology())

    def _replace(self, name: URIRef, content: Graph) -> None:
        """Swap a named graph's content in one Oxigraph transaction: all or nothing."""
        body = content.serialize(format="nt")
        update = f"DROP SILENT GRAPH <{name}> ;\nINSERT DATA {{ GRAPH <{name}> {{\n{body}\n}} }}"
        with self._lock:
            self._oxigraph().update(update)

    def _drop(self, name: URIRef) -> None:
        with self._lock:
            self._oxigraph().update(f"DROP SILENT GRAPH <{name}>")

    def _oxigraph(self) -> Any:
        return self.ds.store._inner  # type: ignore[attr-defined]

    # --- cards ----------------------------------------------------------------------------
    def add_card(self, card: Card) -> str:
        """Validate and store the card, replacing that institution's earlier card for it."""
        check_card(card)
        iri = card.iri
        self._replace(iri, card.to_graph())
        return str(iri)

    def remove_dataset(self, institution: str, dataset_id: str) -> None:
        iri = dataset_iri(institution, dataset_id)
        with self._lock:
            if len(self.ds.graph(iri)) == 0:
                raise KGError(
                    f"no card for data set {dataset_id!r} of {institution!r}; "
                    "`fl-kg query` lists what is stored"
                )
            self._drop(iri)

    def cards(self) -> list[str]:
        rows = self.query("SELECT DISTINCT ?d WHERE { GRAPH ?d { ?d a dcat:Dataset } } ORDER BY ?d")
        return [str(r[0]) for r in rows]

    def graph_of(self, name: str) -> Graph:
        return self.ds.graph(URIRef(name))

    # --- queries --------------------------------------------------------------------------
    def query(self, sparql: str, timeout_s: float = 10.0, limit: int = 10_000) -> Result:
        """A read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE), bounded in time and rows."""
        text = sparql if "PREFIX" in sparql.upper() else sparql_prefixes() + sparql
        try:
            kind = prepareQuery(text).algebra.name
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if any(
                w in sparql.upper() for w in ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE")
            ):
                raise KGError(
                    "only read-only queries (SELECT, ASK, CONSTRUCT, DESCRIBE) are allowed here; "
                    "change the graph with `fl-kg add` / `fl-kg remove`"
                ) from None
            raise KGError(f"not a valid SPARQL query: {first}") from None
        if kind not in READ_ONLY:
            raise KGError("only SELECT, ASK, CONSTRUCT and DESCRIBE queries are allowed")
        box: dict[str, Any] = {}

        def run() -> None:
            # Oxigraph's result objects must live and die on the thread that made them.
            try:
                raw = self.ds.query(text)  # Oxigraph reads are safe alongside writes
                box["result"] = _materialise(raw, kind, limit)
                del raw
            except Exception as exc:
                box["error"] = exc

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise KGError(f"query took longer than {timeout_s:g} s; narrow it or add a LIMIT")
        if "error" in box:
            raise KGError(f"query failed: {str(box['error']).splitlines()[0]}")
        result: Result = box["result"]
        return result

    # --- import / export ------------------------------------------------------------------
    def export(self, fmt: str = "turtle", include_ontology: bool = False) -> str:
        """Cards and provenance (and the vocabulary, if asked) as Turtle, TriG, N-Quads or JSON-LD."""
        import pyoxigraph as ox

        if fmt not in ("turtle", "ttl", "trig", "nquads", "json-ld"):
            raise KGError(f"unknown export format {fmt!r}; use turtle, trig, nquads or json-ld")
        skip = ox.NamedNode(str(ONTOLOGY_GRAPH))
        quads = [
            q
            for q in self._oxigraph().quads_for_pattern(None, None, None, None)
            if include_ontology or q.graph_name != skip
        ]
        data = ox.serialize(quads, format=ox.RdfFormat.N_QUADS).decode()
        if fmt == "nquads":
            return data
        ds = Dataset()
        ds.parse(data=data, format="nquads")
        for p, ns in PREFIXES.items():
            ds.bind(p, ns)
        if fmt in ("turtle", "ttl"):
            merged = Graph()
            for p, ns in PREFIXES.items():
                merged.bind(p, ns)
            for s_, p_, o_, _g in ds.quads((None, None, None, None)):
                merged.add((s_, p_, o_))
            return merged.serialize(format="turtle")
        return ds.serialize(format=fmt)

    def import_data(self, text: str, fmt: str, graph: str) -> int:
        """Load triples into one named graph (replacing it); returns the number of triples."""
        g = Graph()
        try:
            g.parse(data=text, format=fmt)
        except Exception as exc:
            raise KGError(f"cannot parse the {fmt} input: {str(exc).splitlines()[0]}") from None
        self._replace(URIRef(graph), g)
        return len(g)


def _materialise(raw: Result, kind: str, limit: int) -> Result:
    """A plain rdflib Result holding at most `limit` rows, independent of the store."""
    if kind == "AskQuery":
        out = Result("ASK")
        out.askAnswer = bool(raw.askAnswer)
        return out
    if kind == "SelectQuery":
        out = Result("SELECT")
        out.vars = list(raw.vars or [])
        rows = []
        for i, row in enumerate(raw):
            if i >= limit:
                break
            rows.append(dict(zip(out.vars, row, strict=False)))
        out.bindings = rows
        return out
    out = Result("CONSTRUCT")
    g = Graph()
    for i, triple in enumerate(raw):
        if i >= limit:
            break
        g.add(triple)  # type: ignore[arg-type]
    out.graph = g
    return out
