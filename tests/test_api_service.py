"""The coordinator's API on SQLite and on PostgreSQL: keys, visibility, runs, privacy, audit."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import test_db_backends as backends
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from fl_server.api import ApiSettings, create_app
from fl_server.db import Database
from fl_server.db.institutions import create_admin_key
from fl_server.db.models import AuditEntry, Institution, PrivacyCharge, Run
from fl_server.db.recorder import RunRecorder
from fl_server.federation import RoundRecord

database_url = backends.database_url  # the fixture, shared with test_db_backends


@dataclass
class Api:
    client: TestClient
    db: Database
    url: str
    admin: dict[str, str]

    def institution(self, name: str) -> dict[str, str]:
        r = self.client.post("/api/institutions", json={"name": name}, headers=self.admin)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['api_key']}"}

    def snapshot(self) -> tuple[int, int, int, int]:
        with self.db.read() as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(t)) or 0
                for t in (Institution, Run, PrivacyCharge, AuditEntry)
            )


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    db = Database(database_url)
    with db.write() as s:
        token = create_admin_key(s, actor="test")
    app = create_app(ApiSettings(database_url=database_url, max_body_bytes=20_000), db=db)
    with TestClient(app) as client:
        yield Api(client, db, database_url, {"Authorization": f"Bearer {token}"})
    db.dispose()


def _round(rnd: int) -> RoundRecord:
    return RoundRecord(
        round=rnd,
        metrics={"accuracy": 0.5 + rnd / 10, "loss": 1.0 / rnd},
        train_metrics={"train-loss": 0.4},
        clients=["bank-a", "bank-b"],
        rejected={"bank-c": "update's layers differ"} if rnd == 2 else {},
        bytes_up=100 * rnd,
        bytes_down=300 * rnd,
        seconds=0.5,
        epsilon={"bank-a": 1.0 * rnd, "bank-b": 2.0 * rnd},
        per_client={"bank-a": {"epsilon": 1.0 * rnd}, "bank-b": {"epsilon": 2.0 * rnd}},
    )


def _recorded_run(api: Api, run_id: str = "run-1", rounds: int = 3) -> None:
    rec = RunRecorder(api.url, run_id, "credit-default", {"rounds": rounds, "scenario": "banks"})
    rec.start()
    for rnd in range(1, rounds + 1):
        rec.on_round(_round(rnd))
    rec.finish("finished", {"accuracy": 0.8})
    rec.close()


# --- authentication and authorisation --------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer fedkg_0123456789abcdef_wrongsecret"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_requests_without_a_valid_key_get_401_and_change_nothing(
    api: Api, headers: dict[str, str]
) -> None:
    before = api.snapshot()
    for method, path, body in (
        ("GET", "/api/runs", None),
        ("POST", "/api/institutions", {"name": "bank-x"}),
        ("POST", "/api/runs", {"task": "credit-default"}),
    ):
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized" and "key" in r.json()["message"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert api.snapshot() == before


def test_an_institution_cannot_do_admin_work(api: Api) -> None:
    bank = api.institution("bank-a")
    before = api.snapshot()
    for method, path, body in (
        ("POST", "/api/institutions", {"name": "bank-x"}),
        ("POST", "/api/institutions/bank-a/keys", None),
        ("POST", "/api/runs", {"task": "credit-default"}),
        ("GET", "/api/audit/verify", None),
    ):
        r = api.client.request(method, path, json=body, headers=bank)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "forbidden"
    assert api.snapshot() == before


def test_a_rotated_key_stops_working(api: Api) -> None:
    old = api.institution("bank-a")
    r = api.client.post("/api/institutions/bank-a/keys", headers=api.admin)
    assert r.status_code == 201
    new = {"Authorization": f"Bearer {r.json()['api_key']}"}
    assert api.client.get("/api/me", headers=old).status_code == 401
    assert api.client.get("/api/me", headers=new).json() == {
        "role": "institution",
        "institution": "bank-a",
    }


def test_an_api_key_is_shown_once_and_never_stored_or_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = api.client.post(
        "/api/institutions", json={"name": "bank-a", "contact": "ops@bank-a"}, headers=api.admin
    )
    token = r.json()["api_key"]
    secret = token.split("_", 2)[2]
    bank = {"Authorization": f"Bearer {token}"}
    seen = [
        api.client.get("/api/institutions", headers=api.admin).text,
        api.client.get("/api/institutions/bank-a", headers=bank).text,
        api.client.get("/api/audit", headers=api.admin).text,
        api.client.get("/api/me", headers=bank).text,
        api.client.get("/metrics").text,
    ]
    assert all(secret not in body for body in seen)
    assert all(secret not in rec.getMessage() for rec in caplog.records)
    with api.db.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
        dump += " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM audit_log")) for v in row
        )
    assert secret not in dump


def test_institutions_see_only_themselves(api: Api) -> None:
    a = api.institution("bank-a")
    api.institution("bank-b")
    assert [i["name"] for i in api.client.get("/api/institutions", headers=a).json()] == ["bank-a"]
    assert api.client.get("/api/institutions/bank-b", headers=a).status_code == 403
    names = [i["name"] for i in api.client.get("/api/institutions", headers=api.admin).json()]
    assert names == ["bank-a", "bank-b"]


def test_registering_twice_or_a_bad_name_is_refused(api: Api) -> None:
    api.institution("bank-a")
    before = api.snapshot()
    dup = api.client.post("/api/institutions", json={"name": "bank-a"}, headers=api.admin)
    assert dup.status_code == 409 and "already exists" in dup.json()["message"]
    bad = api.client.post("/api/institutions", json={"name": "Bank A!"}, headers=api.admin)
    assert bad.status_code == 422 and bad.json()["fields"][0]["location"] == "body.name"
    extra = api.client.post(
        "/api/institutions", json={"name": "bank-z", "role": "admin"}, headers=api.admin
    )
    assert extra.status_code == 422
    assert api.snapshot() == before


# --- runs ------------------------------------------------------------------------------


def test_the_admin_creates_runs_for_registered_institutions(api: Api) -> None:
    api.institution("bank-a")
    r = api.client.post(
        "/api/runs",
        json={
            "id": "plan-1",
            "task": "credit-default",
            "config": {"rounds": 4},
            "participants": ["bank-a"],
        },
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "created" and body["total_rounds"] == 4
    assert [p["institution"] for p in body["participants"]] == ["bank-a"]
    before = api.snapshot()
    for payload, status, words in (
        ({"id": "plan-1", "task": "credit-default"}, 409, "already exists"),
        ({"task": "no-such-task"}, 422, "unknown task"),
        ({"task": "digits", "participants": ["bank-zz"]}, 422, "unknown institutions bank-zz"),
        ({"id": "bad id", "task": "digits"}, 422, "id"),
    ):
        r = api.client.post("/api/runs", json=payload, headers=api.admin)
        assert r.status_code == status and words in r.json()["message"], r.text
    assert api.snapshot() == before


def test_institutions_see_the_runs_they_take_part_in_and_only_their_own_figures(api: Api) -> None:
    a = api.institution("bank-a")
    outsider = api.institution("bank-z")
    _recorded_run(api)

    assert [r["id"] for r in api.client.get("/api/runs", headers=a).json()] == ["run-1"]
    assert api.client.get("/api/runs", headers=outsider).json() == []
    for path in ("", "/status", "/rounds", "/rounds/1", "/metrics"):
        r = api.client.get(f"/api/runs/run-1{path}", headers=outsider)
        assert r.status_code == 403 and "does not take part" in r.json()["message"]

    r2 = api.client.get("/api/runs/run-1/rounds/2", headers=a).json()
    assert r2["clients"] == ["bank-a", "bank-b"]
    assert r2["epsilon"] == {"bank-a": 2.0} and set(r2["per_client"]) == {"bank-a"}
    assert r2["rejected"] == {}
    full = api.client.get("/api/runs/run-1/rounds/2", headers=api.admin).json()
    assert full["epsilon"] == {"bank-a": 2.0, "bank-b": 4.0}
    assert full["rejected"] == {"bank-c": "update's layers differ"}


def test_run_detail_status_rounds_and_series_carry_the_recorded_numbers(api: Api) -> None:
    _recorded_run(api)
    listed = api.client.get("/api/runs", headers=api.admin).json()
    assert listed[0]["latest_metrics"] == {
        "accuracy": pytest.approx(0.8),
        "loss": pytest.approx(1 / 3),
    }
    detail = api.client.get("/api/runs/run-1", headers=api.admin).json()
    assert detail["final"] == {"accuracy": 0.8} and detail["scenario"] == "banks"
    assert {p["institution"] for p in detail["participants"]} == {"bank-a", "bank-b", "bank-c"}
    status = api.client.get("/api/runs/run-1/status", headers=api.admin).json()
    assert (status["status"], status["last_completed_round"], status["total_rounds"]) == (
        "finished",
        3,
        3,
    )

    series = api.client.get("/api/runs/run-1/metrics", headers=api.admin).json()
    assert series["rounds"] == [1, 2, 3]
    assert series["metrics"]["accuracy"] == pytest.approx([0.6, 0.7, 0.8])
    assert series["epsilon"] == {"bank-a": [1.0, 2.0, 3.0], "bank-b": [2.0, 4.0, 6.0]}
    assert series["participants"] == [2, 2, 2] and series["rejected"] == [0, 1, 0]
    assert series["rejections"] == [
        {"round": 2, "institution": "bank-c", "reason": "update's layers differ"}
    ]
    assert series["bytes_up"] == [100, 200, 300] and series["bytes_down"] == [300, 600, 900]

    assert api.client.get("/api/runs/run-1/rounds/9", headers=api.admin).status_code == 404
    missing = api.client.get("/api/runs/nope/status", headers=api.admin)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert api.client.get("/api/runs?status=finished", headers=api.admin).json()[0]["id"] == "run-1"
    assert api.client.get("/api/runs?status=bogus", headers=api.admin).status_code == 422


# --- privacy charges -------------------------------------------------------------------


CHARGE = {
    "run_id": "run-1",
    "round": 1,
    "dataset": "credit-default@bank-a",
    "epsilon": 0.8,
    "delta": 1e-5,
    "steps": 34,
    "noise_multiplier": 0.93,
    "sample_rate": 0.11,
}


def test_institutions_report_privacy_charges_that_only_they_and_the_admin_see(api: Api) -> None:
    a = api.institution("bank-a")
    b = api.institution("bank-b")
    _recorded_run(api)
    r = api.client.post("/api/privacy/charges", json=CHARGE, headers=a)
    assert r.status_code == 201, r.text
    assert r.json()["institution"] == "bank-a" and r.json()["epsilon"] == 0.8
    api.client.post("/api/privacy/charges", json={**CHARGE, "dataset": "other@bank-b"}, headers=b)

    own = api.client.get("/api/privacy/charges", headers=a).json()
    assert [c["dataset"] for c in own] == ["credit-default@bank-a"]
    assert len(api.client.get("/api/privacy/charges?run_id=run-1", headers=api.admin).json()) == 2
    assert [
        c["institution"] for c in api.client.get("/api/runs/run-1/privacy", headers=b).json()
    ] == ["bank-b"]
    entries = api.client.get("/api/audit", headers=a).json()["entries"]
    assert [e["action"] for e in entries] == ["institution.created", "privacy.charged"]


def test_bad_privacy_charges_are_refused_and_change_nothing(api: Api) -> None:
    a = api.institution("bank-a")
    _recorded_run(api)
    assert api.client.post("/api/privacy/charges", json=CHARGE, headers=a).status_code == 201
    before = api.snapshot()
    cases = [
        (CHARGE, a, 409),
        ({**CHARGE, "run_id": "nope"}, a, 404),
        ({**CHARGE, "epsilon": -1}, a, 422),
        ({**CHARGE, "sample_rate": 0}, a, 422),
        ({**CHARGE, "delta": 1.0}, a, 422),
        ({**CHARGE, "dataset": "x\u0000y"}, a, 422),
        ({**CHARGE, "round": 2}, api.admin, 403),
    ]
    for payload, headers, status in cases:
        r = api.client.post("/api/privacy/charges", json=payload, headers=headers)
        assert r.status_code == status, (payload, r.text)
    nan = api.client.post(
        "/api/privacy/charges",
        content=b'{"run_id": "run-1", "round": 3, "dataset": "d", "epsilon": NaN, "delta": 0,'
        b' "steps": 1, "noise_multiplier": 1, "sample_rate": 0.5}',
        headers={**a, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    assert api.snapshot() == before


# --- audit -----------------------------------------------------------------------------


def test_the_audit_log_pages_and_verifies(api: Api) -> None:
    api.institution("bank-a")
    _recorded_run(api)
    first = api.client.get("/api/audit?limit=2", headers=api.admin).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2] and first["next_after"] == 2
    rest = api.client.get(f"/api/audit?after={first['next_after']}", headers=api.admin).json()
    assert rest["entries"][0]["seq"] == 3 and rest["next_after"] is None
    assert rest["entries"][-1]["action"] == "run.finished"
    newest = api.client.get("/api/audit?newest_first=true&limit=1", headers=api.admin).json()
    assert newest["entries"][0]["seq"] == rest["entries"][-1]["seq"]
    verified = api.client.get("/api/audit/verify", headers=api.admin).json()
    assert verified["ok"] and verified["entries"] == rest["entries"][-1]["seq"]


# --- the HTTP surface --------------------------------------------------------------------


def test_errors_are_json_with_a_message(api: Api) -> None:
    r = api.client.get("/api/nothing-here", headers=api.admin)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.client.delete("/api/runs", headers=api.admin)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    r = api.client.post(
        "/api/runs", content=b"{not json", headers={**api.admin, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["message"]
    r = api.client.get("/api/runs?limit=0", headers=api.admin)
    assert r.status_code == 422 and r.json()["fields"][0]["location"] == "query.limit"


def test_oversized_bodies_are_refused_before_they_are_read(api: Api) -> None:
    before = api.snapshot()
    big = {"task": "credit-default", "config": {"blob": "x" * 30_000}}
    r = api.client.post("/api/runs", json=big, headers=api.admin)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"task": "credit-default", "config": {"blob": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}}'

    r = api.client.post(
        "/api/runs", content=chunks(), headers={**api.admin, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert api.snapshot() == before


def test_health_and_prometheus_metrics(api: Api) -> None:
    _recorded_run(api)
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    api.client.get("/api/runs/run-1/status", headers=api.admin)
    body = api.client.get("/metrics").text
    assert (
        'fedkg_http_requests_total{method="GET",route="/api/runs/{run_id}/status",status="200"} 1.0'
        in body
    )
    assert 'fedkg_runs{status="finished"} 1.0' in body
    assert "fedkg_http_request_duration_seconds_bucket" in body


def test_the_dashboard_is_served_with_a_strict_content_policy(api: Api) -> None:
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code in (307, 302) and r.headers["location"] == "/dashboard/"
    page = api.client.get("/dashboard/")
    assert page.status_code == 200 and "fedkg" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = api.client.get("/dashboard/static/app.js")
    assert (
        script.status_code == 200
        and "script-src 'self'" in script.headers["content-security-policy"]
    )
    assert "cdn" not in page.text.lower() and "https://" not in script.text


def test_openapi_documents_every_endpoint_with_bearer_auth(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    paths = set(schema["paths"])
    for path in (
        "/api/institutions",
        "/api/datasets",
        "/api/datasets/{institution}/{dataset_id}",
        "/api/tasks",
        "/api/runs",
        "/api/runs/{run_id}/status",
        "/api/runs/{run_id}/metrics",
        "/api/privacy/charges",
        "/api/audit",
        "/api/sparql",
        "/api/graph",
        "/healthz",
        "/metrics",
    ):
        assert path in paths
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_tasks_come_from_the_registry(api: Api) -> None:
    tasks = api.client.get("/api/tasks", headers=api.admin).json()
    credit = next(t for t in tasks if t["name"] == "credit-default")
    assert credit["modality"] == "tabular" and credit["target"]["categories"] == ["good", "bad"]
    assert {t["name"] for t in tasks} >= {"credit-default", "breast-cancer", "digits"}
