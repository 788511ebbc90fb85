"""Data set cards: what an institution publishes about one data set (YAML or JSON-LD).

A card says who holds the data, its modality, what each local column means (a shared
concept, a unit, how its categories map), the label's definition, the purposes it may be
used for, and counts noised with a declared epsilon. docs/knowledge_graph.md documents
the format with an example.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from pyshacl import validate as shacl_validate
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, RDFS, SH, SKOS, XSD

from knowledge_graph.concepts import MODALITIES, ONTOLOGY_DIR, modality_iri
from knowledge_graph.errors import CardError, KGError
from knowledge_graph.units import UNITS, by_iri, conversion, unit
from knowledge_graph.vocab import CONCEPT, FK, PREFIXES, dataset_iri, institution_iri


@dataclass
class FeatureCard:
    column: str
    concept: str  # "scheme:name", e.g. finance:credit_amount
    unit: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # local category -> concept's value


@dataclass
class Card:
    institution: str
    kind: str
    dataset_id: str
    title: str
    modality: str
    purposes: list[str]
    features: list[FeatureCard]
    label: FeatureCard
    jurisdiction: str | None = None
    records: int | None = None
    class_counts: dict[str, int] = field(default_factory=dict)
    count_epsilon: float | None = None
    description: str = ""
    source: str = ""

    @property
    def iri(self) -> URIRef:
        return dataset_iri(self.institution, self.dataset_id)

    # --- YAML / dict --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def feat(f: FeatureCard) -> dict[str, Any]:
            d: dict[str, Any] = {"column": f.column, "concept": f.concept}
            if f.unit:
                d["unit"] = f.unit
            if f.values:
                d["values"] = dict(f.values)
            return d

        ds: dict[str, Any] = {
            "id": self.dataset_id,
            "title": self.title,
            "modality": self.modality,
            "purposes": list(self.purposes),
        }
        if self.description:
            ds["description"] = self.description
        if self.source:
            ds["source"] = self.source
        if self.records is not None:
            ds["records"] = self.records
        if self.class_counts:
            ds["class_counts"] = dict(self.class_counts)
        if self.count_epsilon is not None:
            ds["count_epsilon"] = self.count_epsilon
        ds["label"] = feat(self.label)
        ds["features"] = [feat(f) for f in self.features]
        out: dict[str, Any] = {"institution": self.institution, "kind": self.kind}
        if self.jurisdiction:
            out["jurisdiction"] = self.jurisdiction
        out["dataset"] = ds
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, raw: Any) -> Card:
        if not isinstance(raw, dict):
            raise CardError("card: expected a mapping with institution, kind and dataset")
        ds = raw.get("dataset")
        if not isinstance(ds, dict):
            raise CardError("dataset: missing; describe the data set under a `dataset:` key")
        feats = ds.get("features") or []
        if not isinstance(feats, list):
            raise CardError("dataset.features: expected a list of columns")
        label = ds.get("label")
        if not isinstance(label, dict):
            raise CardError("dataset.label: missing; give the label column and its concept")
        return cls(
            institution=str(raw.get("institution", "")),
            kind=str(raw.get("kind", "")),
            jurisdiction=str(raw["jurisdiction"]) if raw.get("jurisdiction") else None,
            dataset_id=str(ds.get("id", "")),
            title=str(ds.get("title", "")),
            modality=str(ds.get("modality", "")),
            purposes=[str(p) for p in (ds.get("purposes") or [])],
            description=str(ds.get("description", "")),
            source=str(ds.get("source", "")),
            records=ds.get("records"),
            class_counts={str(k): v for k, v in (ds.get("class_counts") or {}).items()},
            count_epsilon=ds.get("count_epsilon"),
            label=_feature(label, "dataset.label"),
            features=[_feature(f, f"dataset.features[{i}]") for i, f in enumerate(feats)],
        )

    # --- RDF --------------------------------------------------------------------------------
    def to_graph(self) -> Graph:
        """The card as RDF (DCAT, SKOS, QUDT, fedkg terms); unknown units raise KGError."""
        g = Graph()
        for p, ns in PREFIXES.items():
            g.bind(p, ns)
        inst = institution_iri(self.institution)
        g.add((inst, RDF.type, FK.Institution))
        if self.institution:
            g.add((inst, RDFS.label, Literal(self.institution)))
        if self.kind:
            g.add((inst, FK.kind, Literal(self.kind)))
        if self.jurisdiction:
            g.add((inst, FK.jurisdiction, Literal(self.jurisdiction)))
        d = self.iri
        g.add((d, RDF.type, DCAT.Dataset))
        if self.dataset_id:
            g.add((d, DCTERMS.identifier, Literal(self.dataset_id)))
        if self.title:
            g.add((d, DCTERMS.title, Literal(self.title)))
        if self.description:
            g.add((d, DCTERMS.description, Literal(self.description)))
        if self.source:
            g.add((d, DCTERMS.source, Literal(self.source)))
        g.add((d, DCTERMS.publisher, inst))
        if self.modality in MODALITIES:
            g.add((d, FK.modality, modality_iri(self.modality)))
        elif self.modality:
            g.add((d, FK.modality, Literal(self.modality)))
        for p in self.purposes:
            g.add((d, FK.allowedPurpose, Literal(p)))
        if self.records is not None:
            g.add((d, FK.recordCount, _typed(self.records, XSD.integer)))
        if self.count_epsilon is not None:
            g.add((d, FK.countEpsilon, _typed(self.count_epsilon, XSD.double)))
        for value, n in self.class_counts.items():
            cc = BNode()
            g.add((d, FK.classCount, cc))
            g.add((cc, RDF.type, FK.ClassCount))
            g.add((cc, FK.classValue, Literal(value)))
            g.add((cc, FK["count"], _typed(n, XSD.integer)))
        for i, f in enumerate(self.features):
            g.add((d, FK.feature, _add_feature(g, d, f, f"f{i}")))
        g.add((d, FK.label, _add_feature(g, d, self.label, "label")))
        return g

    def to_jsonld(self) -> str:
        return self.to_graph().serialize(format="json-ld", context=_jsonld_context(), indent=2)


def _typed(value: Any, datatype: URIRef) -> Literal:
    """Keep what the card said, so that SHACL can reject a wrong type by name."""
    if datatype == XSD.integer and isinstance(value, int) and not isinstance(value, bool):
        return Literal(value, datatype=XSD.integer)
    if datatype == XSD.double and isinstance(value, int | float) and not isinstance(value, bool):
        return Literal(float(value), datatype=XSD.double)
    return Literal(str(value))


def _feature(raw: Any, where: str) -> FeatureCard:
    if not isinstance(raw, dict):
        raise CardError(f"{where}: expected a mapping with column and concept")
    values = raw.get("values") or {}
    if not isinstance(values, dict):
        raise CardError(f"{where}.values: expected a mapping from local value to concept value")
    return FeatureCard(
        column=str(raw.get("column", "")),
        concept=str(raw.get("concept", "")),
        unit=str(raw["unit"]) if raw.get("unit") not in (None, "") else None,
        values={str(k): str(v) for k, v in values.items()},
    )


def concept_ref(curie: str) -> URIRef:
    """`finance:credit_amount` or a full IRI."""
    if curie.startswith(("http://", "https://")):
        return URIRef(curie)
    scheme, _, name = curie.partition(":")
    return CONCEPT[f"{scheme}/{name}"] if name else CONCEPT[f"unknown/{curie}"]


def concept_curie(iri: URIRef) -> str:
    text = str(iri)
    if text.startswith(str(CONCEPT)):
        scheme, _, name = text[len(str(CONCEPT)) :].partition("/")
        return f"{scheme}:{name}"
    return text


def _add_feature(g: Graph, dataset: URIRef, f: FeatureCard, key: str) -> URIRef:
    node = URIRef(f"{dataset}#{key}")
    g.add((node, RDF.type, FK.Feature))
    if f.column:
        g.add((node, FK.column, Literal(f.column)))
    if f.concept:
        g.add((node, FK.represents, concept_ref(f.concept)))
    if f.unit:
        g.add((node, FK.unit, unit(f.unit).iri))
    for local, canonical in sorted(f.values.items()):
        r = URIRef(f"{node}/value/{len(list(g.objects(node, FK.recode)))}")
        g.add((node, FK.recode, r))
        g.add((r, RDF.type, FK.Recoding))
        g.add((r, FK.localValue, Literal(local)))
        g.add((r, FK.conceptValue, Literal(canonical)))
    return node


def _jsonld_context() -> dict[str, str]:
    return {p: str(ns) for p, ns in PREFIXES.items()}


# --- reading --------------------------------------------------------------------------------
def load_card(source: str | Path | dict[str, Any]) -> Card:
    """A card from a YAML/JSON-LD file, YAML text, or an already parsed mapping."""
    if isinstance(source, dict):
        return Card.from_dict(source)
    text = source
    name = "card"
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and len(source) < 4096
        and Path(source).suffix.lower() in {".yaml", ".yml", ".json", ".jsonld"}
    ):
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise CardError(f"{path}: cannot read the card ({exc.strerror})") from None
        if path.suffix.lower() in {".json", ".jsonld"}:
            return card_from_jsonld(text, name)
    try:
        raw = yaml.safe_load(str(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise CardError(f"{name}:{where} is not valid YAML; check indentation and colons") from None
    return Card.from_dict(raw)


def card_from_jsonld(text: str, name: str = "card") -> Card:
    """Read a card back from its JSON-LD form (as `Card.to_jsonld` writes it)."""
    try:
        g = Graph().parse(data=text, format="json-ld")
    except (ValueError, json.JSONDecodeError) as exc:
        raise CardError(f"{name}: not valid JSON-LD ({str(exc).splitlines()[0]})") from None
    return card_from_graph(g, name)


class TripleSource(Protocol):
    """The part of rdflib's Graph API a card is read through."""

    def subjects(self, predicate: Any, object: Any) -> Iterator[Any]: ...
    def objects(self, subject: Any, predicate: Any) -> Iterator[Any]: ...
    def value(self, subject: Any, predicate: Any) -> Any: ...


def card_from_graph(g: TripleSource, name: str = "card") -> Card:
    """The card a graph holds (one dcat:Dataset), e.g. a named graph of the store."""
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    if len(datasets) != 1:
        raise CardError(f"{name}: a card describes exactly one dcat:Dataset, found {len(datasets)}")
    d = datasets[0]
    inst = g.value(d, DCTERMS.publisher)

    def s(node: Any, pred: URIRef) -> str:
        v = g.value(node, pred)
        return str(v) if v is not None else ""

    def feat(node: Any) -> FeatureCard:
        u = g.value(node, FK.unit)
        values = {s(r, FK.localValue): s(r, FK.conceptValue) for r in g.objects(node, FK.recode)}
        concept = g.value(node, FK.represents)
        return FeatureCard(
            s(node, FK.column),
            concept_curie(concept) if concept is not None else "",
            by_iri(u).key if u is not None else None,
            values,
        )

    modality = g.value(d, FK.modality)
    modality_key = next((k for k, v in MODALITIES.items() if v == modality), str(modality or ""))
    records = g.value(d, FK.recordCount)
    eps = g.value(d, FK.countEpsilon)
    return Card(
        institution=s(inst, RDFS.label),
        kind=s(inst, FK.kind),
        jurisdiction=s(inst, FK.jurisdiction) or None,
        dataset_id=s(d, DCTERMS.identifier),
        title=s(d, DCTERMS.title),
        modality=modality_key,
        purposes=sorted(str(p) for p in g.objects(d, FK.allowedPurpose)),
        description=s(d, DCTERMS.description),
        source=s(d, DCTERMS.source),
        records=int(records) if records is not None else None,
        class_counts={
            s(c, FK.classValue): int(g.value(c, FK["count"])) for c in g.objects(d, FK.classCount)
        },
        count_epsilon=float(eps) if eps is not None else None,
        label=feat(g.value(d, FK.label)),
        features=[feat(f) for f in sorted(g.objects(d, FK.feature), key=_feature_order)],
    )


def _feature_order(node: Any) -> tuple[int, str]:
    """Cards number their features (#f0, #f1, ...): keep the card's column order."""
    tail = str(node).rsplit("#f", 1)[-1]
    return (int(tail), "") if tail.isdigit() else (1 << 30, str(node))


# --- validation -----------------------------------------------------------------------------
@cache
def _shapes() -> Graph:
    return Graph().parse(ONTOLOGY_DIR / "shapes.ttl", format="turtle")


@cache
def ontology() -> Graph:
    g = Graph()
    g.parse(ONTOLOGY_DIR / "fedkg.ttl", format="turtle")
    g.parse(ONTOLOGY_DIR / "concepts.ttl", format="turtle")
    return g


def validate_card(card: Card) -> list[str]:
    """Every problem with the card, one line each naming the field and the fix; [] if valid."""
    problems: list[str] = []
    unknown_units: set[str] = set()
    for i, f in enumerate([*card.features, card.label]):
        try:
            unit(f.unit)
        except KGError as exc:
            where = _field(card, f, i)
            problems.append(f"{where}.unit: {exc}")
            unknown_units.add(f"{where}.unit:")
    if unknown_units:  # check the rest as if those units were left out
        card = copy.deepcopy(card)
        for f in [*card.features, card.label]:
            if f.unit is not None and f.unit not in UNITS:
                f.unit = None
    data = card.to_graph()
    conforms, report, _ = shacl_validate(
        data + ontology(), shacl_graph=_shapes(), inference="none", allow_warnings=True
    )
    if not conforms:
        problems += sorted(set(_violations(card, data, report)))
    problems += [
        p for p in _semantic_problems(card) if not any(p.startswith(u) for u in unknown_units)
    ]
    return problems


def check_card(card: Card) -> Card:
    problems = validate_card(card)
    if problems:
        more = f" (and {len(problems) - 1} more; run `fl-kg validate`)" if len(problems) > 1 else ""
        raise CardError(problems[0] + more)
    return card


def _field(card: Card, f: FeatureCard, index: int) -> str:
    if f is card.label:
        return "dataset.label"
    return f"dataset.features[{f.column or index}]"


def _violations(card: Card, data: Graph, report: Graph) -> list[str]:
    out = []
    feature_names = {
        URIRef(f"{card.iri}#f{i}"): f"dataset.features[{f.column or i}]"
        for i, f in enumerate(card.features)
    }
    feature_names[URIRef(f"{card.iri}#label")] = "dataset.label"
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        message = str(report.value(result, SH.resultMessage) or "invalid value")
        prefix = feature_names.get(focus)  # type: ignore[arg-type]
        if prefix is None and isinstance(focus, URIRef) and "/value/" in str(focus):
            prefix = feature_names.get(URIRef(str(focus).split("/value/")[0]), "dataset")
        if prefix is not None:
            head, _, rest = message.partition(": ")
            out.append(f"{prefix}.{head}: {rest}" if rest else f"{prefix}: {message}")
        else:
            out.append(message)
    return out


def _semantic_problems(card: Card) -> list[str]:
    """What SHACL cannot see: recodings onto unknown values, units that contradict the
    concept's kind, a column or a concept claimed twice."""
    onto = ontology()
    out = []
    columns: dict[str, int] = {}
    concepts: dict[str, list[str]] = {}
    for i, f in enumerate([*card.features, card.label]):
        where = _field(card, f, i)
        columns[f.column] = columns.get(f.column, 0) + 1
        concepts.setdefault(f.concept, []).append(f.column)
        c = concept_ref(f.concept)
        if onto.value(c, SKOS.notation) is None:
            continue  # unknown concepts are SHACL's to report
        allowed = {str(v) for v in onto.objects(c, FK.allowedValue)}
        categorical = onto.value(c, FK.valueType) == FK.Categorical
        for local, canonical in sorted(f.values.items()):
            if allowed and canonical not in allowed:
                out.append(
                    f"{where}.values[{local}]: {canonical!r} is not a value of "
                    f"{f.concept}; use one of {sorted(allowed)}"
                )
        if categorical and f.unit is not None:
            out.append(f"{where}.unit: {f.concept} is categorical; remove the unit")
        if not categorical and f.values:
            out.append(f"{where}.values: {f.concept} is a number; remove `values`")
        expected = onto.value(c, FK.unit)
        if not categorical and f.unit is None and expected not in (None, unit(None).iri):
            out.append(
                f"{where}.unit: {f.concept} is a quantity with a unit; "
                "say which unit the column is in"
            )
        elif not categorical and f.unit is not None and expected is not None:
            try:
                conversion(unit(f.unit), by_iri(expected))  # type: ignore[arg-type]
            except KGError as exc:
                out.append(f"{where}.unit: {exc}")
    for column, n in columns.items():
        if n > 1 and column:
            out.append(f"dataset.features[{column}]: described {n} times; describe it once")
    for concept, cols in concepts.items():
        if len(cols) > 1 and concept:
            out.append(
                f"dataset.features[{cols[1]}].concept: {concept} is already the concept of "
                f"column {cols[0]!r}; a concept takes one column"
            )
    return out


# --- noised counts --------------------------------------------------------------------------
def noised_counts(
    labels: list[str], epsilon: float, seed: int | None = None
) -> tuple[int, dict[str, int]]:
    """Record count and class counts with Laplace noise, epsilon split evenly between the two.

    Each record changes the total by one and one class count by one (sensitivity 1 each).
    """
    if not epsilon > 0:
        raise CardError(f"count_epsilon must be > 0, got {epsilon}")
    rng = np.random.default_rng(seed)
    scale = 2.0 / epsilon
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    total = max(0, round(len(labels) + rng.laplace(0, scale)))
    per_class = {
        str(v): max(0, round(int(c) + rng.laplace(0, scale)))
        for v, c in zip(values, counts, strict=True)
    }
    return total, per_class
