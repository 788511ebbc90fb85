"""Namespaces: fedkg's own vocabulary, and the W3C/QUDT ones it reuses."""

from __future__ import annotations

import re

from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, PROV, QB, RDF, RDFS, SKOS, XSD

FK = Namespace("https://w3id.org/fedkg/ns#")
CONCEPT = Namespace("https://w3id.org/fedkg/concept/")
INST = Namespace("https://w3id.org/fedkg/institution/")
DATA = Namespace("https://w3id.org/fedkg/dataset/")
TASK = Namespace("https://w3id.org/fedkg/task/")
RUN = Namespace("https://w3id.org/fedkg/run/")
QUDT = Namespace("http://qudt.org/schema/qudt/")
UNIT = Namespace("http://qudt.org/vocab/unit/")

ONTOLOGY_GRAPH = URIRef("https://w3id.org/fedkg/graph/ontology")
PROVENANCE_GRAPH = URIRef("https://w3id.org/fedkg/graph/provenance")

PREFIXES = {
    "fk": FK,
    "concept": CONCEPT,
    "inst": INST,
    "data": DATA,
    "task": TASK,
    "run": RUN,
    "qudt": QUDT,
    "unit": UNIT,
    "dcat": DCAT,
    "dct": DCTERMS,
    "prov": PROV,
    "skos": SKOS,
    "rdfs": RDFS,
    "rdf": RDF,
    "xsd": XSD,
    "qb": QB,
}

_SAFE = re.compile(r"[^A-Za-z0-9._~-]+")


def slug(text: str) -> str:
    """An IRI-safe local name that keeps readable names readable."""
    return _SAFE.sub("-", text.strip()).strip("-") or "x"


def concept_iri(scheme: str, name: str) -> URIRef:
    return CONCEPT[f"{slug(scheme)}/{slug(name)}"]


def institution_iri(name: str) -> URIRef:
    return INST[slug(name)]


def dataset_iri(institution: str, dataset_id: str) -> URIRef:
    return DATA[f"{slug(institution)}/{slug(dataset_id)}"]


def sparql_prefixes() -> str:
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items())
