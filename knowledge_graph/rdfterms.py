"""rdflib <-> pyoxigraph terms, for the paths that bypass oxrdflib for speed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import XSD

_XSD_STRING = str(XSD.string)


@lru_cache(maxsize=1 << 16)
def _iri(value: str) -> URIRef:
    return URIRef(value)  # vocabulary IRIs repeat in every card: checked once


def from_ox(term: Any) -> Any:
    """An rdflib term for an Oxigraph one (plain literals stay plain)."""
    if isinstance(term, ox.NamedNode):
        return _iri(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        return (
            Literal(term.value)
            if datatype == _XSD_STRING
            else Literal(term.value, datatype=URIRef(datatype))
        )
    if term is None:
        return None
    raise TypeError(f"unexpected RDF term {term!r}")


def to_ox(term: Any) -> Any:
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"unexpected RDF term {term!r}")


def to_ox_quads(g: Graph, graph_name: URIRef) -> Iterator[ox.Quad]:
    name = ox.NamedNode(str(graph_name))
    for s, p, o in g:
        yield ox.Quad(to_ox(s), to_ox(p), to_ox(o), name)


class TripleIndex:
    """One small graph's triples (e.g. a card) indexed by subject and predicate.

    Reads the way rdflib's Graph does (`value`, `objects`, `subjects`) at a fraction of
    the cost of filling an rdflib store, for the planner that reads every member's card.
    """

    def __init__(self, quads: Iterable[ox.Quad]) -> None:
        self._sp: dict[Any, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self._po: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
        for q in quads:
            s, p, o = from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)
            self._sp[s][p].append(o)
            self._po[(p, o)].append(s)

    def __len__(self) -> int:
        return sum(len(objs) for by_p in self._sp.values() for objs in by_p.values())

    def value(self, subject: Any, predicate: Any) -> Any:
        found = self._sp.get(subject, {}).get(predicate)
        return found[0] if found else None

    def objects(self, subject: Any, predicate: Any) -> Iterator[Any]:
        return iter(list(self._sp.get(subject, {}).get(predicate, [])))

    def subjects(self, predicate: Any, object: Any) -> Iterator[Any]:
        return iter(list(self._po.get((predicate, object), [])))
