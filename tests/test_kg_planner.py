"""The planner: who joins, why the others do not (precisely), the coordinator's plan, the
compatibility view, and the shipped tasks' conformance to their shapes."""

from __future__ import annotations

import pytest

from fl_client.data import FeatureMapping
from fl_client.tasks import get_task
from knowledge_graph.cards import Card, FeatureCard
from knowledge_graph.concepts import concepts_graph, validate_registry
from knowledge_graph.errors import KGError, PlanError
from knowledge_graph.planner import (
    compatibility_clusters,
    compatibility_graph,
    federation_plan,
    institutions_with_modalities,
    plan_task,
)
from knowledge_graph.simulated import localize
from knowledge_graph.store import KnowledgeGraph


def _card(task_name: str, i: int, who: str) -> Card:
    task = get_task(task_name)
    frame = task.reference_data().iloc[i * 30 : (i + 1) * 30].reset_index(drop=True)
    return localize(frame, task.name, i, who, 0)[1]


def test_each_exclusion_names_exactly_what_is_missing() -> None:
    kg = KnowledgeGraph.open(None)
    kg.add_card(_card("credit-default", 0, "bank-a"))
    wrong_purpose = _card("credit-default", 1, "bank-b")
    wrong_purpose.purposes = ["marketing"]
    kg.add_card(wrong_purpose)
    thin = _card("credit-default", 2, "bank-c")
    thin.features = thin.features[:15]  # five concepts short
    kg.add_card(thin)
    other_label = _card("credit-default", 0, "bank-d")
    other_label.label = FeatureCard("outcome", "medical:diagnosis", None, {})
    kg.add_card(other_label)
    kg.add_card(_card("digits", 0, "hospital-e"))
    kg.add_card(_card("breast-cancer", 0, "hospital-f"))
    plan = plan_task(kg, "credit-default")
    assert plan.institutions == ["bank-a"]
    assert plan.excluded["bank-b"] == "its card does not allow purpose 'credit-risk'"
    assert plan.excluded["bank-c"].startswith("lacks concept(s) finance:")
    assert plan.excluded["bank-c"].endswith("and 2 more")
    assert plan.excluded["bank-d"] == "its label is medical:diagnosis, not finance:creditability"
    assert plan.excluded["hospital-e"] == "holds no tabular data set"
    assert plan.excluded["hospital-f"] == (
        "its tabular data set breast-cancer@hospital-f has none of the task's concepts"
    )


def test_an_institution_joins_with_its_first_data_set_that_aligns() -> None:
    kg = KnowledgeGraph.open(None)
    # A trusted import skips validation: this card recodes the label onto a class the task
    # lacks, which only alignment notices. bank-a has a second data set that fits.
    bad = _card("credit-default", 1, "bank-a")
    bad.dataset_id = "a-loans"
    bad.label.values = {"gut": "excellent", "schlecht": "bad"}
    good = _card("credit-default", 1, "bank-a")
    good.dataset_id = "b-loans"
    kg.import_data(bad.to_graph().serialize(format="nt"), "nt", trusted=True)
    kg.add_card(good)
    only_bad = _card("credit-default", 1, "bank-z")
    only_bad.label.values = {"gut": "excellent", "schlecht": "bad"}
    kg.import_data(only_bad.to_graph().serialize(format="nt"), "nt", trusted=True)
    plan = plan_task(kg, "credit-default")
    assert [(m.institution, m.dataset_id) for m in plan.members] == [("bank-a", "b-loans")]
    assert plan.excluded == {
        "bank-z": f"data set {only_bad.dataset_id}: column 'kreditwuerdigkeit': recodes onto "
        "'excellent', which the task does not know"
    }


def test_the_coordinators_plan_carries_each_mapping_and_refuses_an_empty_one() -> None:
    kg = KnowledgeGraph.open(None)
    for i in range(3):
        kg.add_card(_card("breast-cancer", i, f"hospital-{i}"))
    plan = plan_task(kg, "breast-cancer")
    fp = federation_plan(plan)
    assert fp.allowed == {"hospital-0", "hospital-1", "hospital-2"}
    for m in plan.members:
        sent = FeatureMapping.from_json(str(fp.node_config[m.institution]["mapping"]))
        assert sent == m.mapping and fp.node_config[m.institution]["dataset-id"] == m.dataset_id
    assert sent.rules["mean_radius"].source == "MEAN_RADIUS"  # hospital-2 writes upper case
    empty = plan_task(kg, "credit-default")
    with pytest.raises(PlanError, match=r"no institution can join task 'credit-default' \(hosp"):
        federation_plan(empty)
    assert issubclass(PlanError, KGError) and issubclass(PlanError, ValueError)


def test_compatibility_view_and_multi_modal_institutions() -> None:
    kg = KnowledgeGraph.open(None)
    kg.add_card(_card("breast-cancer", 0, "hospital-a"))
    scans = _card("digits", 0, "hospital-a")
    scans.label = FeatureCard("befund", "medical:diagnosis", None, {})
    kg.add_card(scans)
    kg.add_card(_card("digits", 1, "hospital-b"))
    kg.add_card(_card("credit-default", 0, "bank-c"))
    g = compatibility_graph(kg)
    kinds = {n: d["kind"] for n, d in g.nodes(data=True)}
    assert sum(k == "institution" for k in kinds.values()) == 3
    assert sum(k == "dataset" for k in kinds.values()) == 4
    scan_node = g.nodes[str(scans.iri)]
    assert scan_node["modality"] == "Image" and g.degree(str(scans.iri)) == 1 + 64 + 1
    assert institutions_with_modalities(kg, "medical:diagnosis") == ["hospital-a"]
    assert institutions_with_modalities(kg, "imaging:pixel_3", ("Image",)) == [
        "hospital-a",
        "hospital-b",
    ]
    assert compatibility_clusters(kg) == [{"bank-c"}, {"hospital-a", "hospital-b"}]


def test_the_shipped_tasks_and_concepts_conform_to_their_shapes() -> None:
    assert validate_registry() == []
    task = get_task("credit-default")
    g = concepts_graph([task])
    assert len(set(g.subjects())) > len(task.schema.columns)
    broken = type(task)(
        name="broken",
        description="label without classes",
        schema=task.schema,
        model_factory=task.model_factory,
        reference_loader=task.reference_loader,
        purpose="",
    )
    problems = validate_registry([broken])
    assert any("task.purpose: name the purpose" in p for p in problems), problems
