"""Alignment: an institution's own names, units and codes back to the task's table, through
the mapping JSON the coordinator sends; what does not fit is reported, never guessed."""

from __future__ import annotations

import pandas as pd
import pytest

from fl_client.data import Column, FeatureMapping, Schema
from fl_client.tasks import get_task, list_tasks
from fl_client.tasks.base import Task
from knowledge_graph.alignment import align
from knowledge_graph.cards import Card, FeatureCard, validate_card
from knowledge_graph.errors import KGError
from knowledge_graph.planner import federation_plan, plan_task
from knowledge_graph.simulated import localize
from knowledge_graph.store import KnowledgeGraph
from knowledge_graph.units import conversion, scale_between, unit


@pytest.mark.parametrize("task_name", [t.name for t in list_tasks()])
def test_every_task_round_trips_from_local_columns_through_the_plan(task_name: str) -> None:
    task = get_task(task_name)
    data = task.reference_data()
    kg = KnowledgeGraph.open(None)
    local: dict[str, pd.DataFrame] = {}
    frames: dict[str, pd.DataFrame] = {}
    for i in range(3):
        name = f"inst-{i}"
        frames[name] = data.iloc[i * 40 : (i + 1) * 40].reset_index(drop=True)
        local[name], card = localize(frames[name], task.name, i, name, 11)
        assert validate_card(card) == []
        kg.add_card(card)
    assert list(local["inst-1"].columns) != list(frames["inst-1"].columns)
    plan = federation_plan(plan_task(kg, task.name))
    assert plan.allowed == set(frames)
    for name, frame in frames.items():
        mapping = FeatureMapping.from_json(str(plan.node_config[name]["mapping"]))
        back = mapping.apply(local[name])[list(frame.columns)]
        numeric = [c.name for c in task.schema.columns if c.kind == "numeric"]
        pd.testing.assert_frame_equal(
            back[numeric].astype(float), frame[numeric].astype(float), rtol=1e-9, atol=1e-9
        )
        other = [c for c in frame.columns if c not in numeric]
        assert back[other].astype(str).equals(frame[other].astype(str))


def test_localize_is_deterministic_and_variants_really_differ() -> None:
    task = get_task("credit-default")
    frame = task.reference_data().iloc[:30].reset_index(drop=True)
    one = localize(frame, task.name, 2, "bank-2", 5)
    two = localize(frame, task.name, 2, "bank-2", 5)
    assert one[0].equals(two[0]) and one[1].to_dict() == two[1].to_dict()
    units = {f.column: f.unit for f in one[1].features}
    assert units["credit_amount_thousand_euro"] == "thousand euro"
    assert units["duration_year"] == "year"
    assert one[0]["duration_year"].iloc[0] == pytest.approx(frame["duration_in_month"].iloc[0] / 12)
    german = localize(frame, task.name, 1, "bank-1", 5)[0]
    assert "kreditbetrag_dm" in german and set(german["kreditwuerdigkeit"]) <= {"gut", "schlecht"}


def _climate_task() -> Task:
    """A task outside the registry with an affine unit (temperature)."""
    schema = Schema(
        columns=(
            Column("body_temperature", "numeric", unit="degree Celsius"),
            Column("weight", "numeric", unit="kilogram"),
            Column("smoker", "categorical", ("no", "yes")),
        ),
        target=Column("fever", "categorical", ("no", "yes")),
    )
    return Task("triage", "test task", schema, lambda s: None, pd.DataFrame, "triage")  # type: ignore[arg-type,return-value]


def _card(features: list[FeatureCard], label: FeatureCard | None = None) -> Card:
    return Card(
        institution="clinic",
        kind="hospital",
        dataset_id="ward",
        title="ward",
        modality="tabular",
        purposes=["triage"],
        features=features,
        label=label or FeatureCard("fieber", "triage:fever", None, {"ja": "yes", "nein": "no"}),
        count_epsilon=1.0,
    )


def test_affine_units_categories_and_renames_become_scale_offset_recode() -> None:
    task = _climate_task()
    card = _card(
        [
            FeatureCard("temp_f", "triage:body_temperature", "degree Fahrenheit"),
            FeatureCard("gewicht_lb", "triage:weight", "pound"),
            FeatureCard("raucher", "triage:smoker", None, {"j": "yes", "n": "no"}),
        ]
    )
    result = align(task, card)
    assert result.ok, result.reasons()
    local = pd.DataFrame(
        {
            "temp_f": [98.6, 212.0, 32.0],
            "gewicht_lb": [220.462262, 100.0, 0.0],
            "raucher": ["j", "n", "j"],
            "fieber": ["ja", "nein", "ja"],
        }
    )
    out = FeatureMapping.from_json(result.mapping.to_json()).apply(local)
    assert out["body_temperature"].tolist() == pytest.approx([37.0, 100.0, 0.0])
    assert out["weight"].tolist() == pytest.approx([100.0, 45.359237, 0.0])
    assert out["smoker"].tolist() == ["yes", "no", "yes"]
    assert out["fever"].tolist() == ["yes", "no", "yes"]
    assert result.mapping.rules["body_temperature"].offset != 0.0


def test_what_does_not_fit_is_reported_not_guessed() -> None:
    task = _climate_task()
    card = _card(
        [
            FeatureCard("temp", "triage:body_temperature", "kilogram"),  # wrong kind of unit
            FeatureCard("w1", "triage:weight", "kilogram"),
            FeatureCard("w2", "triage:weight", "gram"),  # two columns, one concept
            # smoker missing
        ]
    )
    result = align(task, card)
    assert not result.ok and result.mapping.rules.keys() == {"fever"}
    reasons = result.reasons()
    assert "no column for concept triage:smoker" in reasons
    assert "two columns claim concept triage:weight" in reasons
    assert any(
        r.startswith("column 'temp': cannot convert 'kilogram' to 'degree Celsius'")
        for r in reasons
    )
    kinds = align(
        task,
        _card(
            [
                FeatureCard("temp", "triage:body_temperature", None, {"hot": "yes"}),
                FeatureCard("w", "triage:weight", "kilogram"),
                FeatureCard("s", "triage:smoker", "kilogram"),
            ]
        ),
    )
    assert any("recodes values but its concept is numeric" in r for r in kinds.reasons())
    assert any("has unit 'kilogram' but its concept is categorical" in r for r in kinds.reasons())
    onto = align(task, _card([], FeatureCard("f", "triage:fever", None, {"ja": "maybe"})))
    assert any("recodes onto 'maybe', which the task does not know" in r for r in onto.reasons())


def test_unit_table_converts_within_a_dimension_only() -> None:
    assert conversion(unit("kelvin"), unit("degree Celsius")) == pytest.approx((1.0, -273.15))
    assert scale_between(unit("year"), unit("month")) == 12.0
    assert scale_between(unit("thousand euro"), unit("Deutsche Mark")) == pytest.approx(1955.83)
    with pytest.raises(KGError, match="different kinds of quantity"):
        conversion(unit("year"), unit("euro"))
    with pytest.raises(KGError, match="differ by an offset"):
        scale_between(unit("kelvin"), unit("degree Celsius"))
    with pytest.raises(KGError, match="unknown unit 'furlong'; use one of"):
        unit("furlong")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.features.append(FeatureCard(c.features[0].column, "finance:job")),
            "dataset.features[kontostand]: described 2 times; describe it once",
        ),
        (
            lambda c: c.features.append(FeatureCard("extra", c.features[0].concept)),
            "dataset.features[extra].concept: finance:status_of_existing_checking_account is "
            "already the concept of column 'kontostand'",
        ),
        (
            lambda c: setattr(c.features[0], "unit", "month"),
            "dataset.features[kontostand].unit: finance:status_of_existing_checking_account is "
            "categorical; remove the unit",
        ),
        (
            lambda c: setattr(c.features[1], "values", {"12": "twelve"}),
            "dataset.features[laufzeit_monate].values: finance:duration_in_month is a number",
        ),
        (
            lambda c: setattr(c.features[1], "unit", "euro"),
            "dataset.features[laufzeit_monate].unit: cannot convert 'euro' to 'month'",
        ),
    ],
)
def test_cards_that_contradict_their_concepts_are_invalid(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    task = get_task("credit-default")
    _, card = localize(task.reference_data().iloc[:20], task.name, 1, "bank-1", 0)
    change(card)
    problems = validate_card(card)
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(KGError):
        KnowledgeGraph.open(None).add_card(card)


def test_every_problem_is_reported_at_once_and_the_card_is_untouched() -> None:
    task = get_task("credit-default")
    _, card = localize(task.reference_data().iloc[:20], task.name, 1, "bank-1", 0)
    card.features[1].unit = "parsec"
    card.features[0].concept = "finance:colour"
    card.title = ""
    problems = validate_card(card)
    assert [p.split(":")[0] for p in problems] == [
        "dataset.features[laufzeit_monate].unit",
        "dataset.features[kontostand].concept",
        "dataset.title",
    ]
    assert card.features[1].unit == "parsec"
