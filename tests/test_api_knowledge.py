"""Data set cards through the API, kept in the database and the knowledge graph together;
the read-only SPARQL endpoint and the graph view."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rdflib
import test_db_backends as backends
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fl_client.tasks import get_task
from fl_server.api import ApiSettings, create_app
from fl_server.db import Database
from fl_server.db.ingest import ingest_cards
from fl_server.db.institutions import create_admin_key, create_institution
from fl_server.db.models import AuditEntry, Dataset

database_url = backends.database_url  # the fixture, shared with test_db_backends

DATASETS_QUERY = "SELECT ?d ?title WHERE { ?d a dcat:Dataset ; dct:title ?title } ORDER BY ?d"


@functools.cache
def card_text(institution: str, variant: int = 0, task: str = "credit-default") -> str:
    """A real card, as a simulated institution writes it (its own column names and units)."""
    from knowledge_graph.simulated import localize

    frame = get_task(task).reference_data().head(40)
    _, card = localize(frame, task, variant, institution, 1)
    return card.to_yaml()


@dataclass
class Api:
    client: TestClient
    db: Database
    url: str
    admin: dict[str, str]
    keys: dict[str, dict[str, str]]

    def titles(self) -> dict[str, str]:
        r = self.client.post("/api/sparql", json={"query": DATASETS_QUERY}, headers=self.admin)
        assert r.status_code == 200, r.text
        return {b["d"]["value"]: b["title"]["value"] for b in r.json()["results"]["bindings"]}

    def snapshot(self) -> tuple[int, int, dict[str, str]]:
        with self.db.read() as s:
            datasets = s.scalar(select(func.count()).select_from(Dataset)) or 0
            entries = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
        return datasets, entries, self.titles()


def _app(url: str, db: Database, **settings: object) -> TestClient:
    return TestClient(create_app(ApiSettings(database_url=url, **settings), db=db))  # type: ignore[arg-type]


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    db = Database(database_url)
    keys = {}
    with db.write() as s:
        admin = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
        for name in ("bank-a", "bank-b"):
            keys[name] = {"Authorization": "Bearer " + create_institution(s, name, actor="test")[1]}
    with _app(database_url, db) as client:
        yield Api(client, db, database_url, admin, keys)
    db.dispose()


def _publish(api: Api, who: str, text: str | None = None) -> dict[str, object]:
    r = api.client.post(
        "/api/datasets", json={"card": text or card_text(who)}, headers=api.keys[who]
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_published_card_is_in_the_database_the_graph_and_the_log(api: Api) -> None:
    body = _publish(api, "bank-a")
    iri = body["iri"]
    assert body["dataset_id"] == "credit-default@bank-a" and body["institution"] == "bank-a"
    assert api.titles() == {iri: "bank-a: credit-default records"}
    listed = api.client.get("/api/datasets", headers=api.keys["bank-a"]).json()
    assert [d["iri"] for d in listed] == [iri] and "card" not in listed[0]
    detail = api.client.get("/api/datasets/bank-a/credit-default@bank-a", headers=api.admin).json()
    assert detail["card"] == card_text("bank-a")
    assert api.client.get("/api/datasets", headers=api.keys["bank-b"]).json() == []
    entries = api.client.get("/api/audit", headers=api.keys["bank-a"]).json()["entries"]
    assert entries[-1]["action"] == "dataset.published" and entries[-1]["target"] == iri

    graph = api.client.get("/api/graph", headers=api.keys["bank-b"]).json()
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert (
        kinds[iri] == "dataset"
        and kinds["https://w3id.org/fedkg/institution/bank-a"] == "institution"
    )
    concepts = [n for n in graph["nodes"] if n["kind"] == "concept"]
    assert len(concepts) == len(yaml.safe_load(card_text("bank-a"))["dataset"]["features"]) + 1
    assert all(0.0 <= n["x"] <= 1.0 and 0.0 <= n["y"] <= 1.0 for n in graph["nodes"])
    assert {e["kind"] for e in graph["edges"]} == {"publishes", "represents"}


def test_invalid_cards_are_refused_with_the_reason_and_change_nothing(
    api: Api, tmp_path: Path
) -> None:
    before = api.snapshot()
    good = yaml.safe_load(card_text("bank-a"))
    bad_unit = json.loads(json.dumps(good))
    numeric = next(f for f in bad_unit["dataset"]["features"] if f.get("unit"))
    numeric["unit"] = "furlongs per fortnight"
    no_concept = json.loads(json.dumps(good))
    no_concept["dataset"]["features"][0]["concept"] = "finance:no_such_thing"
    on_disk = tmp_path / "card.yaml"
    on_disk.write_text(card_text("bank-a"))
    remote = json.dumps({"@context": "https://example.org/ctx.jsonld", "@id": "x"})
    for text, words in (
        (yaml.safe_dump(bad_unit), "unit"),
        (yaml.safe_dump(no_concept), "dataset.features"),
        ("institution: [unclosed", "not valid YAML"),
        (str(on_disk), "card"),  # a path is text like any other: never opened
        (remote, "remote @context"),
        ("{}", "card"),
    ):
        r = api.client.post("/api/datasets", json={"card": text}, headers=api.keys["bank-a"])
        assert r.status_code == 422, (text[:60], r.text)
        assert r.json()["error"] == "invalid_card" and words in r.json()["message"], r.text
        assert r.json()["fields"][0]["location"] == "body.card"
    assert api.snapshot() == before


def test_an_institution_cannot_touch_another_ones_cards(api: Api) -> None:
    _publish(api, "bank-a")
    before = api.snapshot()
    path = "/api/datasets/bank-a/credit-default@bank-a"
    for method, url, body in (
        ("POST", "/api/datasets", {"card": card_text("bank-a")}),
        ("PUT", path, {"card": card_text("bank-a")}),
        ("DELETE", path, None),
        ("GET", path, None),
    ):
        r = api.client.request(method, url, json=body, headers=api.keys["bank-b"])
        assert r.status_code == 403, (method, r.text)
    r = api.client.post("/api/datasets", json={"card": card_text("bank-zz")}, headers=api.admin)
    assert r.status_code == 404 and "no institution named 'bank-zz'" in r.json()["message"]
    anonymous = api.client.post("/api/datasets", json={"card": card_text("bank-a")})
    assert anonymous.status_code == 401
    assert api.snapshot() == before


def test_replace_withdraw_and_publish_again(api: Api) -> None:
    iri = _publish(api, "bank-a")["iri"]
    dup = api.client.post(
        "/api/datasets", json={"card": card_text("bank-a")}, headers=api.keys["bank-a"]
    )
    assert (
        dup.status_code == 409
        and "PUT /api/datasets/bank-a/credit-default@bank-a" in dup.json()["message"]
    )

    changed = yaml.safe_load(card_text("bank-a"))
    changed["dataset"]["title"] = "Bank A loans 2015-2020"
    path = "/api/datasets/bank-a/credit-default@bank-a"
    r = api.client.put(path, json={"card": yaml.safe_dump(changed)}, headers=api.keys["bank-a"])
    assert r.status_code == 200, r.text
    assert api.titles() == {iri: "Bank A loans 2015-2020"}
    wrong = api.client.put(
        "/api/datasets/bank-a/other", json={"card": card_text("bank-a")}, headers=api.keys["bank-a"]
    )
    assert wrong.status_code == 422 and "not bank-a/other" in wrong.json()["message"]

    gone = api.client.delete(path, headers=api.keys["bank-a"])
    assert gone.status_code == 200 and gone.json()["withdrawn_at"] is not None
    assert api.titles() == {}
    assert api.client.get("/api/datasets", headers=api.keys["bank-a"]).json() == []
    assert (
        len(
            api.client.get(
                "/api/datasets?include_withdrawn=true", headers=api.keys["bank-a"]
            ).json()
        )
        == 1
    )
    assert api.client.delete(path, headers=api.keys["bank-a"]).status_code == 404

    again = api.client.post(
        "/api/datasets", json={"card": card_text("bank-a")}, headers=api.keys["bank-a"]
    )
    assert again.status_code == 201 and api.titles() == {iri: "bank-a: credit-default records"}
    actions = [
        e["action"] for e in api.client.get("/api/audit", headers=api.admin).json()["entries"]
    ]
    assert actions[-4:] == [
        "dataset.published",
        "dataset.replaced",
        "dataset.withdrawn",
        "dataset.published",
    ]


def test_a_new_coordinator_process_rebuilds_the_graph_from_the_database(api: Api) -> None:
    _publish(api, "bank-a")
    _publish(api, "bank-b", card_text("bank-b", variant=1))
    api.client.delete("/api/datasets/bank-a/credit-default@bank-a", headers=api.keys["bank-a"])
    with _app(api.url, api.db) as fresh:
        r = fresh.post("/api/sparql", json={"query": DATASETS_QUERY}, headers=api.admin)
    assert [b["title"]["value"] for b in r.json()["results"]["bindings"]] == [
        "bank-b: credit-default records"
    ]


def test_sparql_reads_but_never_writes(api: Api) -> None:
    iri = _publish(api, "bank-a")["iri"]
    ask = api.client.get(
        "/api/sparql", params={"query": "ASK { ?d a dcat:Dataset }"}, headers=api.keys["bank-b"]
    )
    assert ask.status_code == 200 and ask.json()["boolean"] is True
    construct = api.client.post(
        "/api/sparql",
        json={"query": "CONSTRUCT { ?d dct:title ?t } WHERE { ?d a dcat:Dataset ; dct:title ?t }"},
        headers=api.admin,
    ).json()
    assert (
        construct["form"] == "CONSTRUCT" and "bank-a: credit-default records" in construct["turtle"]
    )

    before = api.snapshot()
    for query, code in (
        (f"INSERT DATA {{ <{iri}> dct:title 'hijacked' }}", "query_not_allowed"),
        (
            f"PREFIX dct: <http://purl.org/dc/terms/>\nDELETE WHERE {{ <{iri}> ?p ?o }}",
            "query_not_allowed",
        ),
        (f"DESCRIBE <{iri}>", "query_not_allowed"),
        ("SELECT ?x WHERE { ?x ", "query_rejected"),
        ("# just a comment", "query_not_allowed"),
    ):
        r = api.client.post("/api/sparql", json={"query": query}, headers=api.admin)
        assert r.status_code == 400 and r.json()["error"] == code, (query, r.text)
    smuggled = api.client.post(
        "/api/sparql",
        json={"query": f"SELECT * WHERE {{ ?s ?p ?o }} ; INSERT DATA {{ <{iri}> dct:title 'x' }}"},
        headers=api.admin,
    )
    assert smuggled.status_code == 400
    assert api.snapshot() == before
    assert api.client.post("/api/sparql", json={"query": "ASK {}"}).status_code == 401


def test_sparql_results_are_capped_and_slow_queries_stopped(database_url: str) -> None:
    db = Database(database_url)
    with db.write() as s:
        admin = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
    with _app(database_url, db, sparql_limit=5) as capped:
        r = capped.post("/api/sparql", json={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers=admin)
        assert r.status_code == 200 and r.json()["truncated"] is True
        assert len(r.json()["results"]["bindings"]) == 5
        r = capped.post(
            "/api/sparql",
            json={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
            headers=admin,
        )
        assert r.json()["truncated"] is True
        assert len(rdflib.Graph().parse(data=r.json()["turtle"], format="turtle")) == 5
    with _app(database_url, db, sparql_timeout_s=0.05) as hasty:
        r = hasty.post(
            "/api/sparql",
            json={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"},
            headers=admin,
        )
        assert r.status_code == 400 and "longer than" in r.json()["message"]
    db.dispose()


def test_cards_written_by_a_simulation_are_imported_with_their_institutions(
    database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "banks" / "data"
    data.mkdir(parents=True)
    for i, name in enumerate(("bank-0", "bank-1", "bank-2")):
        (data / f"{name}.card.yaml").write_text(card_text(name, variant=i))
    db = Database(database_url)
    assert ingest_cards(db, data) == 3
    assert ingest_cards(db, data) == 0  # unchanged cards are skipped
    with db.write() as s:
        admin = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
    with _app(database_url, db) as client:
        listed = client.get("/api/datasets", headers=admin).json()
        graph = client.get("/api/graph", headers=admin).json()
    assert [d["institution"] for d in listed] == ["bank-0", "bank-1", "bank-2"]
    assert sorted(n["label"] for n in graph["nodes"] if n["kind"] == "institution") == [
        "bank-0",
        "bank-1",
        "bank-2",
    ]
    db.dispose()


def test_a_graph_on_disk_keeps_its_cards_and_catches_up_with_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    kg_dir = tmp_path / "kg"
    db = Database(url)
    with db.write() as s:
        admin = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
        create_institution(s, "bank-a", actor="test")
    with _app(url, db, kg_dir=kg_dir) as first:
        r = first.post("/api/datasets", json={"card": card_text("bank-a")}, headers=admin)
        assert r.status_code == 201
    data = tmp_path / "sim" / "data"
    data.mkdir(parents=True)
    (data / "bank-b.card.yaml").write_text(card_text("bank-b", variant=2))
    assert ingest_cards(db, data) == 1  # into the database only, while no API runs
    with _app(url, db, kg_dir=kg_dir) as second:
        r = second.post("/api/sparql", json={"query": DATASETS_QUERY}, headers=admin)
        titles = sorted(b["title"]["value"] for b in r.json()["results"]["bindings"])
    assert titles == ["bank-a: credit-default records", "bank-b: credit-default records"]
    db.dispose()


def test_a_graph_store_held_by_another_process_is_a_clear_503(tmp_path: Path) -> None:
    from knowledge_graph.store import KnowledgeGraph

    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    db = Database(url)
    with db.write() as s:
        admin = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
    holder = KnowledgeGraph.open(tmp_path / "kg")
    try:
        with _app(url, db, kg_dir=tmp_path / "kg") as client:
            r = client.get("/api/graph", headers=admin)
            assert r.status_code == 503 and "cannot be opened" in r.json()["message"]
            assert client.get("/healthz").json()["knowledge_graph"] == "unavailable"
    finally:
        holder.close()
        db.dispose()
