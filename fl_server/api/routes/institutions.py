"""Institutions: registered by the admin, each with its own API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from fl_server.api.auth import Admin, Caller, Db
from fl_server.api.errors import ERROR_RESPONSES, forbidden
from fl_server.api.schemas import (
    InstitutionCreate,
    InstitutionCreated,
    InstitutionOut,
    KeyIssued,
    WhoAmI,
)
from fl_server.db.institutions import NAME_PATTERN, create_institution, get_institution, rotate_key
from fl_server.db.models import Institution

router = APIRouter(prefix="/api", tags=["institutions"], responses=ERROR_RESPONSES)
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]


def institution_out(inst: Institution) -> InstitutionOut:
    return InstitutionOut.model_validate(inst, from_attributes=True)


@router.get("/me", summary="Who the API key belongs to")
def me(who: Caller) -> WhoAmI:
    return WhoAmI(role=who.role, institution=who.institution)


@router.post("/institutions", status_code=201, summary="Register an institution (admin)")
def create(body: InstitutionCreate, who: Admin, db: Db) -> InstitutionCreated:
    """Returns the institution's API key once; only its hash is stored."""
    with db.write() as s:
        inst, token = create_institution(
            s, body.name, actor=who.actor, display_name=body.display_name, contact=body.contact
        )
        out = institution_out(inst)
    return InstitutionCreated(institution=out, api_key=token)


@router.get("/institutions", summary="Institutions (an institution sees itself)")
def list_all(who: Caller, db: Db) -> list[InstitutionOut]:
    query = select(Institution).order_by(Institution.name)
    if not who.is_admin:
        query = query.where(Institution.id == who.institution_id)
    with db.read() as s:
        return [institution_out(i) for i in s.scalars(query)]


@router.get("/institutions/{name}", summary="One institution")
def get_one(name: NamePath, who: Caller, db: Db) -> InstitutionOut:
    if not who.is_admin and name != who.institution:
        raise forbidden("an institution sees only its own record")
    with db.read() as s:
        return institution_out(get_institution(s, name))


@router.post(
    "/institutions/{name}/keys",
    status_code=201,
    summary="Issue a new key, revoking the old (admin)",
)
def rotate(name: NamePath, who: Admin, db: Db) -> KeyIssued:
    with db.write() as s:
        token = rotate_key(s, name, actor=who.actor)
    return KeyIssued(api_key=token)
