"""The shared graph: rdflib over a persistent Oxigraph store, one named graph per card.

Each card lives in its own named graph (the data set's IRI), so an institution can replace
or withdraw one card without touching anyone else's; the ontology, concepts and
provenance have graphs of their own. Queries see the union. rdflib is the Python face
(`ds`, `graph_of`); queries, writes and bulk loads go straight to pyoxigraph, which parses
SPARQL in Rust and applies each write as one transaction.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Dataset, Graph, Literal, URIRef, Variable
from rdflib.query import Result

from knowledge_graph.cards import Card, card_from_graph, check_card, ontology
from knowledge_graph.concepts import ONTOLOGY_DIR
from knowledge_graph.errors import KGError
from knowledge_graph.rdfterms import TripleIndex, from_ox, to_ox_quads
from knowledge_graph.sparql import query_form
from knowledge_graph.vocab import (
    DATA,
    FK,
    ONTOLOGY_GRAPH,
    PREFIXES,
    PROVENANCE_GRAPH,
    RUN,
    dataset_iri,
)

_PREFIXES = {p: str(ns) for p, ns in PREFIXES.items()}
_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "ttl": ox.RdfFormat.TURTLE,
    "trig": ox.RdfFormat.TRIG,
    "nquads": ox.RdfFormat.N_QUADS,
    "nt": ox.RdfFormat.N_TRIPLES,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "json-ld": ox.RdfFormat.JSON_LD,
    "jsonld": ox.RdfFormat.JSON_LD,
}
_RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_DCAT_DATASET = ox.NamedNode("http://www.w3.org/ns/dcat#Dataset")
_PUBLISHER = ox.NamedNode("http://purl.org/dc/terms/publisher")
_ONTOLOGY = ox.NamedNode(str(ONTOLOGY_GRAPH))
_PROVENANCE = ox.NamedNode(str(PROVENANCE_GRAPH))
_DIGEST = ox.NamedNode(str(FK.ontologyDigest))

# What the planner reads, derived next to each card so that its query is an index scan
# however large the federation grows. Rule 1: a data set covers a task's concepts when the
# number of the task's required concepts among its features is the number the task needs.
# Rule 2: it is eligible for the task when it also has the task's modality and label
# concept and allows the task's purpose. Applied to the cards in VALUES, or to all.
_DERIVE = """
DELETE {{ GRAPH ?d {{ ?d fk:coversConceptsOf ?t . ?d fk:eligibleFor ?t2 }} }}
WHERE {{ {values} GRAPH ?d {{ ?d a dcat:Dataset
    OPTIONAL {{ ?d fk:coversConceptsOf ?t }} OPTIONAL {{ ?d fk:eligibleFor ?t2 }} }} }} ;
INSERT {{ GRAPH ?d {{ ?d fk:coversConceptsOf ?t }} }}
WHERE {{
  {{ SELECT ?d ?t (COUNT(DISTINCT ?c) AS ?have) WHERE {{
      {values}
      GRAPH ?d {{ ?d a dcat:Dataset ; fk:feature ?f . ?f fk:represents ?c }}
      GRAPH <{onto}> {{ ?t fk:requiresConcept ?c }}
  }} GROUP BY ?d ?t }}
  {{ SELECT ?t (COUNT(DISTINCT ?r) AS ?need) WHERE {{
      GRAPH <{onto}> {{ ?t a fk:Task ; fk:requiresConcept ?r }}
  }} GROUP BY ?t }}
  FILTER(?have = ?need)
}} ;
INSERT {{ GRAPH ?d {{ ?d fk:eligibleFor ?t }} }}
WHERE {{
  {values}
  GRAPH ?d {{ ?d fk:coversConceptsOf ?t ; fk:modality ?m ; fk:allowedPurpose ?p ; fk:label ?l .
             ?l fk:represents ?label }}
  GRAPH <{onto}> {{ ?t fk:modality ?m ; fk:purpose ?p ; fk:labelConcept ?label }}
}}
"""


def _ontology_digest() -> str:
    h = hashlib.sha256()
    for name in ("fedkg.ttl", "concepts.ttl"):
        h.update((ONTOLOGY_DIR / name).read_bytes())
    return h.hexdigest()


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
            if path.exists() and not path.is_dir():
                raise KGError(f"{path}: not a directory; give --store a directory for the graph")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                ds.open(str(path), create=not path.exists())
            except OSError as exc:
                if "lock" in str(exc).lower():
                    raise KGError(
                        f"{path}: the graph store is open in another process (or already here); "
                        "close that one or use another --store"
                    ) from None
                raise KGError(f"{path}: cannot open the graph store ({_first_line(exc)})") from None
        kg = cls(ds, path)
        kg._ensure_ontology()
        return kg

    @property
    def store(self) -> ox.Store:
        """The pyoxigraph store underneath (reads only; write through this class)."""
        inner: ox.Store = self.ds.store._inner  # type: ignore[attr-defined]
        return inner

    def close(self) -> None:
        if self.directory is not None:
            self.store.flush()
            self.ds.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.store)

    # --- writes ---------------------------------------------------------------------------
    def _ensure_ontology(self, force: bool = False) -> None:
        """Install the shipped vocabulary; when it changed, refresh it and re-derive every card."""
        digest = _ontology_digest()
        stored = next(self.store.quads_for_pattern(_ONTOLOGY, _DIGEST, None, _ONTOLOGY), None)
        if not force and stored is not None and stored.object.value == digest:
            return
        onto = Graph()
        onto += ontology()
        onto.add((ONTOLOGY_GRAPH, FK.ontologyDigest, Literal(digest)))
        with self._lock:
            self.store.update(
                _replace_ops({ONTOLOGY_GRAPH: onto})
                + " ;\n"
                + _DERIVE.format(values="", onto=ONTOLOGY_GRAPH),
                prefixes=_PREFIXES,
            )

    def _write(
        self,
        graphs: dict[URIRef, Graph],
        cards: Iterable[URIRef] = (),
        additions: dict[URIRef, Graph] | None = None,
    ) -> None:
        """Replace named graphs, add to others, re-derive the cards: one transaction."""
        ops = _replace_ops(graphs)
        for name, content in (additions or {}).items():
            body = content.serialize(format="nt")
            ops += f" ;\nINSERT DATA {{ GRAPH <{name}> {{\n{body}\n}} }}"
        ops = ops.removeprefix(" ;\n")
        names = " ".join(f"<{c}>" for c in cards)
        if names:
            values = f"VALUES ?d {{ {names} }}"
            ops += " ;\n" + _DERIVE.format(values=values, onto=ONTOLOGY_GRAPH)
        with self._lock:
            self.store.update(ops, prefixes=_PREFIXES)

    def append(self, name: URIRef, content: Graph) -> None:
        """Add triples to a named graph (provenance grows this way), in one transaction."""
        body = content.serialize(format="nt")
        with self._lock:
            self.store.update(f"INSERT DATA {{ GRAPH <{name}> {{\n{body}\n}} }}")

    # --- cards ----------------------------------------------------------------------------
    def add_card(self, card: Card) -> str:
        """Validate and store the card, replacing that institution's earlier card for it."""
        check_card(card)
        iri = card.iri
        self._write({iri: card.to_graph()}, [iri])
        return str(iri)

    def remove_dataset(self, institution: str, dataset_id: str) -> None:
        iri = dataset_iri(institution, dataset_id)
        with self._lock:
            if not self.store.contains_named_graph(ox.NamedNode(str(iri))):
                raise KGError(
                    f"no card for data set {dataset_id!r} of {institution!r}; "
                    "`fl-kg query` lists what is stored"
                )
            self.store.update(f"DROP SILENT GRAPH <{iri}>")

    def cards(self) -> list[str]:
        """The IRIs of the stored data sets (each its own named graph), sorted."""
        rows = self.query(
            "SELECT DISTINCT ?d WHERE { GRAPH ?d { ?d a dcat:Dataset } } ORDER BY ?d", limit=1 << 40
        )
        return [str(r[0]) for r in rows]

    def card(self, iri: str) -> Card:
        """A stored card read back from its named graph."""
        triples = TripleIndex(self.store.quads_for_pattern(None, None, None, ox.NamedNode(iri)))
        if len(triples) == 0:
            raise KGError(f"no card {iri} in the graph; `fl-kg query` lists what is stored")
        return card_from_graph(triples, iri)

    def graph_copy(self, name: str) -> Graph:
        """A detached in-memory copy of one named graph (fast: one index scan)."""
        g = Graph()
        for q in self.store.quads_for_pattern(None, None, None, ox.NamedNode(name)):
            g.add((from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)))  # type: ignore[arg-type]
        return g

    def graph_of(self, name: str) -> Graph:
        """A live rdflib view of one named graph."""
        return self.ds.graph(URIRef(name))

    # --- queries --------------------------------------------------------------------------
    def query(self, sparql: str, timeout_s: float = 10.0, limit: int = 10_000) -> Result:
        """A read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE), bounded in time and rows.

        Prefixes fk:, dcat:, dct:, prov:, skos:, ... are predefined; the default graph is the
        union of all named graphs.
        """
        form = query_form(sparql)
        box: dict[str, Any] = {}

        def run() -> None:
            # Oxigraph's result objects must live and die on the thread that made them: only
            # plain rdflib objects and strings leave this function.
            try:
                raw = self.store.query(sparql, prefixes=_PREFIXES, use_default_graph_as_union=True)
                box["result"] = _materialise(raw, form, limit)
                del raw
            except SyntaxError as exc:
                box["error"] = f"not a valid SPARQL query: {_first_line(exc)}"
            except Exception as exc:
                box["error"] = f"query failed: {_first_line(exc)}"

        worker = threading.Thread(target=run, name="fedkg-sparql", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise KGError(f"query took longer than {timeout_s:g} s; narrow it or add a LIMIT")
        if "error" in box:
            raise KGError(box["error"])
        result: Result = box["result"]
        return result

    # --- import / export ------------------------------------------------------------------
    def export(self, fmt: str = "turtle", include_ontology: bool = False) -> str:
        """Cards and provenance (and the vocabulary, if asked) as Turtle, TriG, N-Quads or JSON-LD.

        Turtle merges the named graphs into one; TriG, N-Quads and JSON-LD keep them, so that
        `import_data` restores the store exactly.
        """
        out = _format(fmt)
        quads = [
            q
            for q in self.store.quads_for_pattern(None, None, None, None)
            if include_ontology or q.graph_name != _ONTOLOGY
        ]
        if out in (ox.RdfFormat.TURTLE, ox.RdfFormat.N_TRIPLES):
            data: Any = {q.triple for q in quads}
        else:
            data = quads
        return ox.serialize(data, format=out, prefixes=_PREFIXES).decode()

    def import_data(
        self, text: str | bytes, fmt: str, graph: str | None = None, *, trusted: bool = False
    ) -> int:
        """Load RDF and return the number of triples it brought.

        Without `graph`, what the input holds finds its place: every dcat:Dataset becomes a
        card in its own named graph (validated like `add_card`, replacing an earlier one),
        runs, rounds and model versions join the provenance graph, the vocabulary is the
        store's own and is skipped. With `graph`, the input replaces that one named graph.
        `trusted=True` is for restoring a dump this store exported: no card validation,
        Oxigraph's bulk loader. Anything refused leaves the store as it was.
        """
        form = _format(fmt)
        data = text.encode() if isinstance(text, str) else text
        if trusted and graph is None:
            return self._restore(data, form)
        quads = _parse(data, form)
        if graph is not None:
            target = URIRef(graph)
            if target == ONTOLOGY_GRAPH:
                raise KGError("the vocabulary graph is the software's own; it cannot be imported")
            placed = {target: [_in(q, ox.NamedNode(graph)) for q in quads]}
        else:
            placed = _place(quads)
        cards = [
            name
            for name, group in placed.items()
            if str(name).startswith(str(DATA))
            or any(q.predicate == _RDF_TYPE and q.object == _DCAT_DATASET for q in group)
        ]
        graphs: dict[URIRef, Graph] = {}
        additions: dict[URIRef, Graph] = {}
        for name, group in placed.items():
            g = Graph()
            for q in group:
                g.add((from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)))
            if name in cards and not trusted:
                card = check_card(card_from_graph(g, str(name)))
                if card.iri != name:
                    raise KGError(
                        f"graph {name} holds the card of {card.iri}; a card's graph is its "
                        "data set's IRI"
                    )
                g = card.to_graph()
            elif name == PROVENANCE_GRAPH and graph is None:
                additions[name] = g  # provenance only grows
                continue
            graphs[name] = g
        self._write(graphs, cards, additions)
        return sum(len(g) for g in (*graphs.values(), *additions.values()))

    def _restore(self, data: bytes, form: ox.RdfFormat) -> int:
        """Bulk-load a dump. Into a store holding nothing yet, straight in (a failure empties
        it again); otherwise parsed in a staging store first, so a bad dump changes nothing."""
        with self._lock:
            before = len(self.store)
            if self._holds_nothing():
                try:
                    self.store.bulk_load(data, format=form)
                    self._settle_loose(self.store)
                except (SyntaxError, KGError) as exc:
                    self.store.clear()
                    self._ensure_ontology(force=True)
                    if isinstance(exc, KGError):
                        raise
                    raise KGError(
                        f"cannot parse the input as {form.name}: {_first_line(exc)}"
                    ) from None
            else:
                staging = ox.Store()
                try:
                    staging.bulk_load(data, format=form)
                except SyntaxError as exc:
                    raise KGError(
                        f"cannot parse the input as {form.name}: {_first_line(exc)}"
                    ) from None
                staging.remove_graph(_ONTOLOGY)
                self._settle_loose(staging)
                for name in list(staging.named_graphs()):
                    if name != _PROVENANCE:
                        self.store.remove_graph(name)
                self.store.bulk_load(
                    staging.dump(format=ox.RdfFormat.N_QUADS), format=ox.RdfFormat.N_QUADS
                )
            self._ensure_ontology(force=True)  # the software's vocabulary; every card re-derived
            return len(self.store) - before

    def _holds_nothing(self) -> bool:
        graphs = [g for g in self.store.named_graphs() if g != _ONTOLOGY]
        loose = next(self.store.quads_for_pattern(None, None, None, ox.DefaultGraph()), None)
        return not graphs and loose is None

    @staticmethod
    def _settle_loose(store: ox.Store) -> None:
        """Move default-graph triples (a Turtle dump) to their cards' graphs and provenance."""
        loose = list(store.quads_for_pattern(None, None, None, ox.DefaultGraph()))
        if not loose:
            return
        placed = _place(loose)
        store.clear_graph(ox.DefaultGraph())
        store.extend(q for group in placed.values() for q in group)


# --- helpers ----------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _format(fmt: str) -> ox.RdfFormat:
    try:
        return _FORMATS[fmt.lower()]
    except KeyError:
        raise KGError(f"unknown format {fmt!r}; use turtle, trig, nquads, nt or json-ld") from None


def _parse(text: str | bytes, fmt: ox.RdfFormat) -> list[ox.Quad]:
    data = text.encode() if isinstance(text, str) else text
    try:
        return list(ox.parse(data, format=fmt))
    except SyntaxError as exc:
        raise KGError(f"cannot parse the input as {fmt.name}: {_first_line(exc)}") from None


def _replace_ops(graphs: dict[URIRef, Graph]) -> str:
    ops = []
    for name, content in graphs.items():
        ops.append(f"DROP SILENT GRAPH <{name}>")
        if len(content):
            body = content.serialize(format="nt")
            ops.append(f"INSERT DATA {{ GRAPH <{name}> {{\n{body}\n}} }}")
    return " ;\n".join(ops)


def _place(quads: list[ox.Quad]) -> dict[URIRef, list[ox.Quad]]:
    """Named graphs keep their name; default-graph triples go to their card or to provenance.

    A card owns its data set's triples, its features and recodings (`<dataset>#...`), the
    blank nodes it points to, and its publisher's description; runs (`run:` IRIs) and the
    blank nodes they point to are provenance. Anything else is refused, not guessed.
    """
    placed: dict[URIRef, list[ox.Quad]] = {}
    loose: list[ox.Quad] = []
    for q in quads:
        if isinstance(q.graph_name, ox.DefaultGraph):
            loose.append(q)
        elif q.graph_name != _ONTOLOGY:
            placed.setdefault(URIRef(q.graph_name.value), []).append(q)
    if not loose:
        return placed
    datasets = {
        q.subject.value: q.subject
        for q in loose
        if q.predicate == _RDF_TYPE and q.object == _DCAT_DATASET
    }
    publishers: dict[Any, list[Any]] = {}
    owner: dict[Any, Any] = {}
    for q in loose:
        s = q.subject
        if isinstance(s, ox.NamedNode):
            if s.value in datasets:
                owner[s] = s
                if q.predicate == _PUBLISHER:
                    publishers.setdefault(q.object, []).append(s)
            elif "#" in s.value and s.value.split("#", 1)[0] in datasets:
                owner[s] = datasets[s.value.split("#", 1)[0]]
            elif s.value.startswith(str(RUN)):
                owner[s] = _PROVENANCE
    changed = True
    while changed:  # blank nodes belong where they are referenced
        changed = False
        for q in loose:
            if q.subject in owner and isinstance(q.object, ox.BlankNode) and q.object not in owner:
                owner[q.object] = owner[q.subject]
                changed = True
    vocabulary = _vocabulary_subjects()
    for q in loose:
        if q.subject in owner:
            home = owner[q.subject]
            placed.setdefault(URIRef(home.value), []).append(_in(q, home))
        elif q.subject in publishers:
            for d in publishers[q.subject]:
                placed.setdefault(URIRef(d.value), []).append(_in(q, d))
        elif q.subject not in vocabulary:
            raise KGError(
                f"triples about {q.subject} belong to no card and no run; import them with "
                "--graph NAME, or leave them out"
            )
    return placed


def _in(q: ox.Quad, graph: ox.NamedNode) -> ox.Quad:
    return ox.Quad(q.subject, q.predicate, q.object, graph)


@cache
def _vocabulary_subjects() -> frozenset[Any]:
    """What the shipped vocabulary describes (skipped when an import carries it)."""
    return frozenset(q.subject for q in to_ox_quads(ontology(), ONTOLOGY_GRAPH)) | {_ONTOLOGY}


def _materialise(raw: Any, form: str, limit: int) -> Result:
    """A plain rdflib Result holding at most `limit` rows, independent of the store."""
    out = Result(form)
    if isinstance(raw, ox.QueryBoolean):
        out.askAnswer = bool(raw)
        return out
    if isinstance(raw, ox.QuerySolutions):
        names = [v.value for v in raw.variables]
        out.vars = [Variable(n) for n in names]
        rows = []
        for i, solution in enumerate(raw):
            if i >= limit:
                break
            rows.append(
                {
                    var: from_ox(solution[n])
                    for var, n in zip(out.vars, names, strict=True)
                    if solution[n] is not None
                }
            )
        out.bindings = rows
        return out
    g = Graph()
    for p, ns in PREFIXES.items():
        g.bind(p, ns)
    for i, t in enumerate(raw):
        if i >= limit:
            break
        g.add((from_ox(t.subject), from_ox(t.predicate), from_ox(t.object)))
    out.graph = g
    return out
