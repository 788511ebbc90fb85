"""The graph store: the read-only query path, export/import round trips, bad input refused
without a trace, the vocabulary refreshed on reopening."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
from rdflib.namespace import DCTERMS

from fl_client.tasks import get_task
from knowledge_graph.cards import Card
from knowledge_graph.errors import CardError, KGError
from knowledge_graph.planner import plan_task
from knowledge_graph.provenance import contributors, record_model, record_round, record_run
from knowledge_graph.simulated import localize
from knowledge_graph.store import KnowledgeGraph
from knowledge_graph.vocab import FK, ONTOLOGY_GRAPH, PROVENANCE_GRAPH

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def _card(i: int) -> Card:
    task = get_task("credit-default")
    frame: pd.DataFrame = task.reference_data().iloc[i * 50 : (i + 1) * 50]
    return localize(frame.reset_index(drop=True), task.name, i, f"bank-{i}", 0)[1]


@pytest.fixture
def kg() -> KnowledgeGraph:
    graph = KnowledgeGraph.open(None)
    for i in range(3):
        graph.add_card(_card(i))
    record_run(graph, "r1", "credit-default", {"rounds": 2})
    record_round(graph, "r1", 1, ["bank-0", "bank-1"], {"bank-0": 0.5, "bank-1": 0.7}, {"auc": 0.7})
    record_model(graph, "r1", "round-1", 1)
    return graph


def test_query_forms_prefixes_and_row_cap(kg: KnowledgeGraph) -> None:
    res = kg.query("SELECT ?d WHERE { ?d a dcat:Dataset } ORDER BY ?d")
    assert res.type == "SELECT" and [str(v) for v in res.vars or []] == ["d"]
    assert len(res.bindings) == 3
    assert kg.query("ASK { ?d fk:coversConceptsOf ?t }").askAnswer is True
    # a query's own PREFIX wins over the predefined one
    assert (
        kg.query("PREFIX fk: <urn:nothing#> ASK { ?d fk:coversConceptsOf ?t }").askAnswer is False
    )
    built = kg.query("CONSTRUCT { ?d a dcat:Dataset } WHERE { ?d a dcat:Dataset }")
    assert built.type == "CONSTRUCT" and len(built.graph) == 3  # type: ignore[arg-type]
    described = kg.query("DESCRIBE <https://w3id.org/fedkg/task/digits>", limit=5)
    assert described.type == "DESCRIBE" and len(described.graph) == 5  # type: ignore[arg-type]
    assert len(kg.query("SELECT ?c WHERE { ?c a skos:Concept }", limit=7).bindings) == 7
    optional = kg.query("SELECT ?d ?x WHERE { ?d a dcat:Dataset OPTIONAL { ?d fk:nothing ?x } }")
    assert all(row.get("x") is None for row in optional.bindings)


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        "PREFIX ex: <urn:x#>\n# a comment with SELECT in it\nDELETE WHERE { ?s ?p ?o }",
        "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
        "drop all",
        "LOAD <http://example.org/x.ttl>",
        "CLEAR GRAPH <https://w3id.org/fedkg/graph/ontology>",
    ],
)
def test_updates_never_reach_the_store(kg: KnowledgeGraph, update: str) -> None:
    before = kg.export("nquads", include_ontology=True)
    with pytest.raises(KGError, match="read-only"):
        kg.query(update)
    assert kg.export("nquads", include_ontology=True) == before


def test_bad_queries_are_one_line_errors(kg: KnowledgeGraph) -> None:
    with pytest.raises(KGError, match="not a valid SPARQL query: expected SELECT") as bad:
        kg.query("SELEKT ?s WHERE { ?s ?p ?o }")
    assert "\n" not in str(bad.value)
    with pytest.raises(KGError, match="not a valid SPARQL query") as broken:
        kg.query("SELECT ?s WHERE { ?s ?p }")
    assert "\n" not in str(broken.value)
    with pytest.raises(KGError, match="found nothing"):
        kg.query("  # only a comment\n")


def test_a_slow_query_is_abandoned(kg: KnowledgeGraph) -> None:
    # about two million rows to count: far longer than a millisecond
    with pytest.raises(KGError, match=r"took longer than 0\.001 s"):
        kg.query("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }", timeout_s=0.001)


@pytest.mark.parametrize("fmt", ["turtle", "trig", "nquads", "json-ld"])
@pytest.mark.parametrize("trusted", [False, True])
def test_export_then_import_restores_cards_plans_and_provenance(
    kg: KnowledgeGraph, fmt: str, trusted: bool
) -> None:
    dump = kg.export(fmt)
    fresh = KnowledgeGraph.open(None)
    assert fresh.import_data(dump, fmt, trusted=trusted) > 0
    assert fresh.cards() == kg.cards()
    assert plan_task(fresh, "credit-default").institutions == ["bank-0", "bank-1", "bank-2"]
    assert contributors(fresh, "r1", "round-1") == [("bank-0", 0.5, 1), ("bank-1", 0.7, 1)]
    for name in [*kg.cards(), str(PROVENANCE_GRAPH)]:
        assert fresh.graph_copy(name).isomorphic(kg.graph_copy(name)), name


def test_turtle_export_with_the_vocabulary_imports_without_it(kg: KnowledgeGraph) -> None:
    fresh = KnowledgeGraph.open(None)
    fresh.import_data(kg.export("turtle", include_ontology=True), "turtle")
    assert fresh.cards() == kg.cards()
    assert len(fresh.graph_copy(str(ONTOLOGY_GRAPH))) == len(kg.graph_copy(str(ONTOLOGY_GRAPH)))


def test_imported_cards_are_validated_and_bad_imports_change_nothing(kg: KnowledgeGraph) -> None:
    before = kg.export("nquads", include_ontology=True)
    broken = _card(1)
    broken.count_epsilon = None
    good = _card(3)
    text = broken.to_graph().serialize(format="nt") + good.to_graph().serialize(format="nt")
    with pytest.raises(CardError, match=r"dataset\.count_epsilon: declare the epsilon"):
        kg.import_data(text, "nt")
    with pytest.raises(KGError, match=r"cannot parse the input as Turtle: .*line \d+"):
        kg.import_data(good.to_graph().serialize(format="turtle") + "\n<urn:a> <urn:b> .", "turtle")
    with pytest.raises(KGError, match="triples about <urn:x> belong to no card and no run"):
        kg.import_data(good.to_graph().serialize(format="nt") + "<urn:x> <urn:y> <urn:z> .\n", "nt")
    with pytest.raises(KGError, match="vocabulary graph is the software's own"):
        kg.import_data("<urn:x> <urn:y> <urn:z> .", "nt", graph=str(ONTOLOGY_GRAPH))
    with pytest.raises(KGError, match="a card's graph is its data set's IRI"):
        kg.import_data(good.to_graph().serialize(format="nt"), "nt", graph=kg.cards()[0])
    with pytest.raises(KGError, match="unknown format 'rdfa'"):
        kg.import_data("", "rdfa")
    assert kg.export("nquads", include_ontology=True) == before
    assert kg.import_data(good.to_graph().serialize(format="nt"), "nt") > 0
    assert str(good.iri) in kg.cards()


def test_a_bad_dump_restores_nothing(kg: KnowledgeGraph) -> None:
    dump = kg.export("nquads")
    bad = dump + "<urn:a> <urn:b> .\n"
    before = kg.export("nquads", include_ontology=True)
    with pytest.raises(KGError, match="cannot parse the input as N-Quads"):
        kg.import_data(bad, "nquads", trusted=True)  # a store with content: staged first
    assert kg.export("nquads", include_ontology=True) == before
    empty = KnowledgeGraph.open(None)
    pristine = empty.export("nquads", include_ontology=True)
    with pytest.raises(KGError, match="cannot parse the input as N-Quads"):
        empty.import_data(bad, "nquads", trusted=True)  # an empty store: loaded straight in
    assert empty.export("nquads", include_ontology=True) == pristine
    stray = kg.export("turtle") + "<urn:x> <urn:y> <urn:z> .\n"
    with pytest.raises(KGError, match="belong to no card and no run"):
        empty.import_data(stray, "turtle", trusted=True)
    assert empty.export("nquads", include_ontology=True) == pristine
    assert empty.import_data(dump, "nquads", trusted=True) == len(kg) - len(
        kg.graph_copy(str(ONTOLOGY_GRAPH))
    )


def test_replacing_a_card_drops_its_old_triples_only(kg: KnowledgeGraph) -> None:
    others = {iri: kg.graph_copy(iri) for iri in kg.cards()[1:]}
    changed = copy.deepcopy(_card(0))
    changed.title = "renamed"
    changed.purposes = ["marketing"]
    kg.add_card(changed)
    stored = kg.card(str(changed.iri))
    assert stored.title == "renamed" and stored.purposes == ["marketing"]
    g = kg.graph_copy(str(changed.iri))
    assert [str(t) for t in g.objects(changed.iri, DCTERMS.title)] == ["renamed"]
    assert len(list(g.objects(changed.iri, FK.coversConceptsOf))) == 1  # re-derived, once
    assert len(list(g.objects(changed.iri, FK.eligibleFor))) == 0  # purpose no longer allowed
    for iri, g in others.items():
        assert kg.graph_copy(iri).isomorphic(g)


def test_a_changed_vocabulary_is_refreshed_and_eligibility_rederived(tmp_path: Path) -> None:
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        kg.add_card(_card(0))
        # as if the store were written by an older release: other digest, nothing derived
        kg.store.update(
            "DELETE WHERE { GRAPH ?g { ?d fk:coversConceptsOf ?t } } ;"
            "DELETE WHERE { GRAPH ?g { ?d fk:eligibleFor ?t } } ;"
            "DELETE WHERE { GRAPH ?g { ?o fk:ontologyDigest ?x } }",
            prefixes={"fk": "https://w3id.org/fedkg/ns#"},
        )
        assert plan_task(kg, "credit-default").institutions == []
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        assert plan_task(kg, "credit-default").institutions == ["bank-0"]


def test_opening_refuses_a_file_and_a_store_in_use(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(KGError, match="not a directory"):
        KnowledgeGraph.open(tmp_path / "file")
    with (
        KnowledgeGraph.open(tmp_path / "kg"),
        pytest.raises(KGError, match="open in another process"),
    ):
        KnowledgeGraph.open(tmp_path / "kg")
