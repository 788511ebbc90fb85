"""Read-only SPARQL over the knowledge graph, and the graph view the dashboard draws."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request

from fl_server.api.auth import Caller
from fl_server.api.errors import ERROR_RESPONSES, ApiError
from fl_server.api.knowledge import Knowledge
from fl_server.api.schemas import GraphOut, SparqlQuery, SparqlResult

router = APIRouter(prefix="/api", tags=["knowledge graph"], responses=ERROR_RESPONSES)

_PROLOGUE = re.compile(
    r"\A(?:\s+|#[^\n]*\n?|(?:PREFIX\s+[^\s:]*:\s*<[^>]*>)|(?:BASE\s+<[^>]*>))*", re.IGNORECASE
)
ALLOWED_FORMS = ("SELECT", "ASK", "CONSTRUCT")


def query_form(query: str) -> str:
    """The query's form (SELECT, ASK, CONSTRUCT, ...), read after its prologue."""
    rest = query[_PROLOGUE.match(query).end() :]  # type: ignore[union-attr]
    word = re.match(r"[A-Za-z]+", rest)
    return word.group(0).upper() if word else ""


def _run(request: Request, query: str) -> SparqlResult:
    form = query_form(query)
    if form not in ALLOWED_FORMS:
        raise ApiError(
            400,
            "query_not_allowed",
            f"only {', '.join(ALLOWED_FORMS)} queries are allowed here"
            + (f", not {form}" if form else "; the query does not start with one"),
        )
    knowledge: Knowledge = request.app.state.knowledge
    return knowledge.query(query, form)


@router.post("/sparql", summary="Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT)")
def sparql_post(body: SparqlQuery, request: Request, who: Caller) -> SparqlResult:
    """Limited to the configured time-out and result cap; updates are refused."""
    return _run(request, body.query)


@router.get("/sparql", summary="Run a read-only SPARQL query given as ?query=")
def sparql_get(
    request: Request, who: Caller, query: Annotated[str, Query(min_length=1, max_length=8000)]
) -> SparqlResult:
    if "\x00" in query:
        raise ApiError(400, "bad_request", "the query must not contain NUL characters")
    return _run(request, query)


@router.get("/graph", summary="Institutions, data sets and concepts, laid out for drawing")
def graph(request: Request, who: Caller) -> GraphOut:
    knowledge: Knowledge = request.app.state.knowledge
    return knowledge.view()
