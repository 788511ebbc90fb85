"""Schemathesis against the OpenAPI schema: no generated request may cause a 5xx, and every
answer matches what the schema documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fl_server.api import ApiSettings, create_app
from fl_server.db import Database
from fl_server.db.institutions import create_admin_key, create_institution
from fl_server.db.recorder import RunRecorder
from fl_server.federation import RoundRecord

CHECKS = [
    not_a_server_error,
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
]


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('schema') / 'coordinator.db'}"
    db = Database(url)
    with db.write() as s:
        headers = {"Authorization": "Bearer " + create_admin_key(s, actor="test")}
        create_institution(s, "bank-a", actor="test")
    rec = RunRecorder(url, "run-1", "credit-default", {"rounds": 2})
    rec.start()
    rec.on_round(
        RoundRecord(
            1, {"accuracy": 0.7}, {}, ["bank-a"], {"bank-b": "late"}, 10, 20, 1.0, {"bank-a": 1.0}
        )
    )
    rec.close()
    app = create_app(ApiSettings(database_url=url, sparql_timeout_s=2.0), db=db)
    yield schemathesis.openapi.from_asgi("/openapi.json", app), headers
    db.dispose()


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_generated_request_causes_a_server_error(
    api_schema: tuple[schemathesis.BaseSchema, dict[str, str]], mode: schemathesis.GenerationMode
) -> None:
    schema, headers = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        if mode is schemathesis.GenerationMode.NEGATIVE and not (
            operation.path_parameters or operation.query or operation.body
        ):
            continue  # nothing to get wrong but the key, covered in test_api_service

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
