"""Bearer API keys: who is calling, and whether they may."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fl_server.api.errors import forbidden, unauthorized
from fl_server.db import Database
from fl_server.db.institutions import Principal, authenticate

_bearer = HTTPBearer(auto_error=False, description="an API key: fedkg_<id>_<secret>")


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    with database(request).read() as session:
        who = authenticate(session, credentials.credentials)
    if who is None:
        raise unauthorized("invalid or revoked API key; ask the coordinator for a new one")
    request.state.principal = who
    return who


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_admin:
        raise forbidden("this needs the coordinator's admin key")
    return who


def institution(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.is_admin:
        raise forbidden("institutions report this with their own key, not the admin's")
    return who


Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
InstitutionCaller = Annotated[Principal, Depends(institution)]
Db = Annotated[Database, Depends(database)]
