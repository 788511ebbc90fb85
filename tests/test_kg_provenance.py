"""Provenance as PROV-O: one query answers who made a model version and at what privacy cost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from knowledge_graph.errors import KGError
from knowledge_graph.provenance import (
    contributors,
    model_iri,
    record_model,
    record_round,
    record_run,
)
from knowledge_graph.store import KnowledgeGraph


def _run(kg: KnowledgeGraph, run_id: str, rounds: list[dict[str, float]]) -> list[str]:
    record_run(
        kg, run_id, "credit-default", {"rounds": len(rounds)}, datetime(2026, 1, 1, tzinfo=UTC)
    )
    models = []
    for rnd, spent in enumerate(rounds, start=1):
        record_round(kg, run_id, rnd, sorted(spent), spent, {"accuracy": 0.5 + rnd / 100})
        models.append(str(record_model(kg, run_id, f"v{rnd}", rnd)))
    return models


def test_contributors_by_model_iri_or_run_and_version(tmp_path: Path) -> None:
    with KnowledgeGraph.open(tmp_path / "kg") as kg:
        models = _run(
            kg,
            "run-a",
            [{"bank-0": 0.4, "bank-1": 0.6}, {"bank-0": 0.8}, {"bank-0": 1.2, "bank-2": 0.3}],
        )
        _run(kg, "run-b", [{"bank-9": 5.0}])  # another run: never mixed in
    with KnowledgeGraph.open(tmp_path / "kg") as kg:  # provenance survives reopening
        assert contributors(kg, models[1]) == [("bank-0", 0.8, 2), ("bank-1", 0.6, 1)]
        assert contributors(kg, "run-a", "v3") == [
            ("bank-0", 1.2, 3),
            ("bank-1", 0.6, 1),
            ("bank-2", 0.3, 1),
        ]
        assert contributors(kg, "run-b", "v1") == [("bank-9", 5.0, 1)]
        chain = kg.query(
            f"SELECT ?older WHERE {{ <{models[2]}> prov:wasDerivedFrom+ ?older }} ORDER BY ?older"
        )
        assert [str(r[0]) for r in chain] == models[:2]
        started = kg.query(
            "SELECT ?t WHERE { ?r a fk:Run ; dct:identifier 'run-a' ; prov:startedAtTime ?t }"
        )
        assert str(next(iter(started))[0]).startswith("2026-01-01T00:00:00")


def test_an_unknown_model_version_is_a_clear_error() -> None:
    kg = KnowledgeGraph.open(None)
    _run(kg, "run-a", [{"bank-0": 0.4}])
    with pytest.raises(KGError, match=r"no model version .*run-a/model/v7 in the graph; list them"):
        contributors(kg, "run-a", "v7")
    assert str(model_iri("run a", "v 1")).endswith("/run/run-a/model/v-1")
