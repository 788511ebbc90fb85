"""Liveness and Prometheus metrics (no key needed: neither carries records)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fl_server.api.auth import database
from fl_server.api.schemas import Health
from fl_server.db.errors import DatabaseError

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Is the coordinator up and its database reachable",
    responses={503: {"model": Health, "description": "the database is unreachable"}},
)
def healthz(request: Request, response: Response) -> Health:
    """`knowledge_graph` is "idle" until the first request that needs the graph opens it."""
    kg = request.app.state.knowledge.state
    try:
        database(request).check()
    except DatabaseError:
        response.status_code = 503
        return Health(status="degraded", database="unreachable", knowledge_graph=kg)
    return Health(status="ok", database="ok", knowledge_graph=kg)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text exposition"}},
)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
