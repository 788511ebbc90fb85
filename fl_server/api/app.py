"""The coordinator's HTTP API (and the dashboard it serves)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from fl_server.api.errors import error_response, install_error_handlers
from fl_server.api.knowledge import Knowledge, KnowledgeUnavailable
from fl_server.api.limits import BodySizeLimit
from fl_server.api.observability import Metrics, MetricsMiddleware
from fl_server.api.routes import audit, datasets, health, institutions, privacy, runs, sparql, tasks
from fl_server.api.routes.datasets import invalid_card_response
from fl_server.api.settings import ApiSettings
from fl_server.db import Database
from fl_server.db.cards import CardInvalid
from fl_server.db.tasks import sync_tasks

log = logging.getLogger("fedkg.api")

DESCRIPTION = """\
The fedkg coordinator: institutions, their data set cards (kept in the knowledge graph),
tasks, runs with their rounds and metrics, privacy charges, a hash-chained audit log and a
read-only SPARQL endpoint.

Authenticate with `Authorization: Bearer <API key>`. The admin key (from
`fl-server admin create-token`) sees everything; an institution's key sees its own records.
Errors are JSON: `{"error": code, "message": "..."}`.
"""


def create_app(settings: ApiSettings | None = None, *, db: Database | None = None) -> FastAPI:
    """Migrates the database to head, mirrors the task registry, and wires every route."""
    settings = settings or ApiSettings.from_env()
    db = db or Database(settings.database_url)
    with db.write() as session:
        sync_tasks(session)

    knowledge = Knowledge(db, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        knowledge.close()

    app = FastAPI(
        lifespan=lifespan,
        title="fedkg coordinator",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "institutions", "description": "who takes part, and their keys"},
            {"name": "datasets", "description": "data set cards, validated and kept in the graph"},
            {"name": "tasks", "description": "what the federation can train"},
            {"name": "runs", "description": "federated runs, rounds and metrics"},
            {"name": "privacy", "description": "privacy spent, as institutions report it"},
            {"name": "audit", "description": "the append-only, hash-chained log"},
            {"name": "knowledge graph", "description": "read-only SPARQL and the graph view"},
            {"name": "operations", "description": "health and Prometheus metrics"},
        ],
    )
    app.state.settings = settings
    app.state.db = db
    app.state.metrics = Metrics(db)
    app.state.knowledge = knowledge
    install_error_handlers(app)

    async def _invalid_card(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, CardInvalid)
        return invalid_card_response(exc)

    app.add_exception_handler(CardInvalid, _invalid_card)

    async def _no_graph(_: Request, exc: Exception) -> Response:
        return error_response(503, "unavailable", str(exc))

    app.add_exception_handler(KnowledgeUnavailable, _no_graph)
    for module in (institutions, datasets, tasks, runs, privacy, audit, sparql, health):
        app.include_router(module.router)

    from fl_server.dashboard import mount_dashboard

    mount_dashboard(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    return app
