"""The knowledge graph: cards, validation, store, alignment, planning, provenance, CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from rdflib import Graph
from typer.testing import CliRunner

from fl_client.data import prepare
from fl_client.tasks import get_task, list_tasks
from knowledge_graph.cards import Card, FeatureCard, card_from_jsonld, load_card, validate_card
from knowledge_graph.concepts import ONTOLOGY_DIR, concepts_graph
from knowledge_graph.errors import CardError, KGError
from knowledge_graph.planner import (
    compatibility_clusters,
    compatibility_graph,
    federation_plan,
    institutions_with_modalities,
    plan_task,
)
from knowledge_graph.provenance import contributors, record_model, record_round, record_run
from knowledge_graph.simulated import localize
from knowledge_graph.store import KnowledgeGraph


def _bank_card(i: int = 1, n: int = 300) -> tuple[object, Card]:
    task = get_task("credit-default")
    df = task.reference_data().iloc[i * n : (i + 1) * n].reset_index(drop=True)
    return df, localize(df, task.name, i, f"bank-{i}", 0)[1]


def test_concepts_file_matches_the_task_registry() -> None:
    shipped = Graph().parse(ONTOLOGY_DIR / "concepts.ttl")
    assert shipped.isomorphic(concepts_graph()), "run `python -m knowledge_graph.concepts`"


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("task_name", [t.name for t in list_tasks()])
def test_aligned_local_data_gives_the_same_training_matrix(task_name: str, index: int) -> None:
    task = get_task(task_name)
    df = task.reference_data().iloc[:200].reset_index(drop=True)
    local, card = localize(df, task.name, index, f"inst-{index}", 3)
    assert validate_card(card) == []
    if index:
        assert set(local.columns) != set(df.columns) or task.modality == "image"
    kg = KnowledgeGraph.open(None)
    kg.add_card(card)
    plan = plan_task(kg, task.name)
    assert plan.institutions == [f"inst-{index}"], plan.excluded
    aligned = plan.members[0].mapping.apply(local)
    want = prepare(df, task.schema, 0.2, 1)
    got = prepare(aligned, task.schema, 0.2, 1)
    np.testing.assert_allclose(got.x_train, want.x_train, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.y_train, want.y_train)


def test_counts_on_a_card_are_noised_not_exact() -> None:
    df, card = _bank_card(1, 300)
    exact = df["creditability"].value_counts().to_dict()
    assert card.count_epsilon == 1.0 and card.records is not None
    noisy = {"gut": "good", "schlecht": "bad"}
    published = {noisy[k]: v for k, v in card.class_counts.items()}
    assert (card.records, published) != (300, exact)
    assert abs(card.records - 300) < 40  # Laplace(2/ε): noise, not nonsense


def _broken(mutate) -> list[str]:  # type: ignore[no-untyped-def]
    _, card = _bank_card()
    raw = card.to_dict()
    mutate(raw)
    return validate_card(load_card(raw))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["dataset"].pop("title"), "dataset.title: give the data set a title"),
        (lambda r: r["dataset"].update(modality="video"), "dataset.modality: use one of"),
        (lambda r: r["dataset"].update(purposes=[]), "dataset.purposes: list at least one"),
        (lambda r: r["dataset"].pop("count_epsilon"), "dataset.count_epsilon: declare the epsilon"),
        (lambda r: r["dataset"].update(count_epsilon=0), "dataset.count_epsilon"),
        (lambda r: r["dataset"].update(records=-5), "dataset.records: a whole number"),
        (lambda r: r.update(jurisdiction="Germany"), "jurisdiction: use a two-letter"),
        (lambda r: r.pop("kind"), "kind: say what the institution is"),
        (
            lambda r: r["dataset"]["features"][0].update(concept="finance:colour"),
            "dataset.features[kontostand].concept: not a known concept",
        ),
        (
            lambda r: r["dataset"]["features"][1].update(unit="parsec"),
            "dataset.features[laufzeit_monate].unit: unknown unit 'parsec'",
        ),
        (
            lambda r: r["dataset"]["features"][1].pop("unit"),
            "dataset.features[laufzeit_monate].unit: finance:duration_in_month is a quantity",
        ),
        (
            lambda r: r["dataset"]["label"]["values"].update(gut="excellent"),
            "dataset.label.values[gut]: 'excellent' is not a value of finance:creditability",
        ),
    ],
)
def test_each_card_violation_is_one_line_naming_field_and_fix(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    problems = _broken(mutate)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_unreadable_cards_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "card.yaml"
    bad.write_text("institution: bank\n  dataset: [oops\n")
    with pytest.raises(CardError, match=r"card.yaml: line \d+ is not valid YAML"):
        load_card(bad)
    with pytest.raises(CardError, match="dataset: missing"):
        load_card({"institution": "x", "kind": "bank"})
    with pytest.raises(CardError, match="cannot read the card"):
        load_card(tmp_path / "none.yaml")


def test_a_card_round_trips_through_yaml_and_json_ld() -> None:
    _, card = _bank_card(2)
    assert load_card(card.to_yaml()).to_dict() == card.to_dict()
    back = card_from_jsonld(card.to_jsonld())
    assert back.to_graph().isomorphic(card.to_graph())


def test_planner_excludes_a_missing_concept_then_includes_it_once_added() -> None:
    kg = KnowledgeGraph.open(None)
    _, full = _bank_card(0)
    _, partial = _bank_card(1)
    partial.features = [f for f in partial.features if f.concept != "finance:credit_amount"]
    kg.add_card(full)
    kg.add_card(partial)
    plan = plan_task(kg, "credit-default")
    assert plan.institutions == ["bank-0"]
    assert "lacks concept(s) finance:credit_amount" in plan.excluded["bank-1"]
    _, fixed = _bank_card(1)
    kg.add_card(fixed)  # the same data set again: replaces the partial card
    plan = plan_task(kg, "credit-default")
    assert plan.institutions == ["bank-0", "bank-1"] and not plan.excluded
    fp = federation_plan(plan)
    assert fp.allowed == {"bank-0", "bank-1"} and "mapping" in fp.node_config["bank-1"]


def test_purpose_and_modality_decide_too() -> None:
    kg = KnowledgeGraph.open(None)
    _, card = _bank_card(0)
    card.purposes = ["marketing"]
    kg.add_card(card)
    plan = plan_task(kg, "credit-default")
    assert not plan.members and "purpose 'credit-risk'" in plan.excluded["bank-0"]
    with pytest.raises(ValueError, match=r"no institution can join task 'credit-default'.*bank-0"):
        federation_plan(plan)
    assert "holds no image data set" in plan_task(kg, "digits").excluded["bank-0"]


def test_one_hospital_two_modalities_and_clusters() -> None:
    kg = KnowledgeGraph.open(None)
    for task_name in ("breast-cancer", "digits"):
        task = get_task(task_name)
        _, card = localize(task.reference_data().iloc[:60], task_name, 0, "hospital-a", 0)
        kg.add_card(card)
    bc = get_task("breast-cancer")
    _, other = localize(bc.reference_data().iloc[60:120], bc.name, 1, "hospital-b", 0)
    kg.add_card(other)
    # a second card of hospital-a whose image data set is labelled with the tumour diagnosis
    digits = get_task("digits")
    _, scans = localize(digits.reference_data().iloc[:60], digits.name, 0, "hospital-a", 0)
    scans.dataset_id = "scans"
    scans.label = FeatureCard("finding", "medical:diagnosis", None, {})
    kg.add_card(scans)
    assert institutions_with_modalities(kg, "medical:diagnosis") == ["hospital-a"]
    g = compatibility_graph(kg)
    kinds = {d["kind"] for _, d in g.nodes(data=True)}
    assert kinds == {"institution", "dataset", "concept"}
    assert compatibility_clusters(kg) == [{"hospital-a", "hospital-b"}]


def test_store_survives_reopening_and_isolates_institutions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, a = _bank_card(0)
    _, b = _bank_card(1)
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        kg.add_card(a)
        kg.add_card(b)
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        assert len(kg.cards()) == 2
        kg.remove_dataset("bank-0", a.dataset_id)
        with pytest.raises(KGError, match="no card for data set"):
            kg.remove_dataset("bank-0", a.dataset_id)
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        assert kg.cards() == [str(b.iri)]
        assert plan_task(kg, "credit-default").institutions == ["bank-1"]


def test_bad_input_leaves_the_store_unchanged() -> None:
    kg = KnowledgeGraph.open(None)
    _, good = _bank_card(0)
    kg.add_card(good)
    before = kg.export("nquads")
    broken = copy.deepcopy(good)
    broken.title = ""
    broken.features[1].concept = "finance:nothing"
    with pytest.raises(CardError, match=r"dataset\.(title|features)"):
        kg.add_card(broken)
    for update in (
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        "DELETE WHERE { ?s ?p ?o }",
        "DROP ALL",
    ):
        with pytest.raises(KGError, match="read-only"):
            kg.query(update)
    with pytest.raises(KGError, match="not a valid SPARQL query"):
        kg.query("SELEKT ?s WHERE { ?s ?p ?o }")
    assert kg.export("nquads") == before


def test_query_caps_rows() -> None:
    kg = KnowledgeGraph.open(None)
    rows = list(kg.query("SELECT ?c WHERE { ?c a skos:Concept }", limit=7))
    assert len(rows) == 7


def test_provenance_answers_who_contributed_at_what_cost() -> None:
    kg = KnowledgeGraph.open(None)
    record_run(kg, "r1", "credit-default", {"rounds": 2})
    record_round(
        kg, "r1", 1, ["bank-0", "bank-1"], {"bank-0": 1.0, "bank-1": 1.2}, {"accuracy": 0.7}
    )
    record_model(kg, "r1", "round-1", 1)
    record_round(kg, "r1", 2, ["bank-0"], {"bank-0": 1.9}, {"accuracy": 0.72})
    record_model(kg, "r1", "round-2", 2)
    assert contributors(kg, "r1", "round-1") == [("bank-0", 1.0, 1), ("bank-1", 1.2, 1)]
    assert contributors(kg, "r1", "round-2") == [("bank-0", 1.9, 2), ("bank-1", 1.2, 1)]


def test_cli_validate_add_plan_query(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from knowledge_graph.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "200"}
    store = ["--store", str(tmp_path / "kg")]
    _, card = _bank_card(1)
    good = tmp_path / "good.yaml"
    good.write_text(card.to_yaml())
    bad = tmp_path / "bad.yaml"
    raw = card.to_dict()
    raw["dataset"]["modality"] = "video"
    raw["dataset"]["features"][0]["concept"] = "finance:colour"
    import yaml

    bad.write_text(yaml.safe_dump(raw))
    res = runner.invoke(app, ["validate", str(bad)], env=env)
    assert (
        res.exit_code == 1
        and "dataset.modality" in res.output
        and "finance:colour" not in res.output
    )
    assert "dataset.features[kontostand].concept" in res.output
    assert runner.invoke(app, ["validate", str(good)], env=env).exit_code == 0
    assert runner.invoke(app, ["add", str(bad), *store], env=env).exit_code == 2
    assert runner.invoke(app, ["add", str(good), *store], env=env).exit_code == 0
    res = runner.invoke(app, ["plan", "credit-default", *store], env=env)
    assert res.exit_code == 0 and "bank-1" in res.output
    res = runner.invoke(app, ["query", "ASK { ?d a dcat:Dataset }", *store], env=env)
    assert res.output.strip() == "true"
    res = runner.invoke(app, ["query", "DROP ALL", *store], env=env)
    assert res.exit_code == 2 and "read-only" in res.output
    res = runner.invoke(app, ["export", *store], env=env)
    assert "kreditwuerdigkeit" in res.output
    res = runner.invoke(app, ["remove", "bank-1", card.dataset_id, *store], env=env)
    assert res.exit_code == 0
    assert runner.invoke(app, ["plan", "credit-default", *store], env=env).exit_code == 1
