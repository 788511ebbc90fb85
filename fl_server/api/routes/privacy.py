"""Privacy charges: what each institution reports having spent, per run, round and data set."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fl_server.api.auth import Caller, Db, InstitutionCaller
from fl_server.api.errors import ERROR_RESPONSES
from fl_server.api.schemas import ChargeIn, ChargeOut
from fl_server.db import audit
from fl_server.db.errors import ConflictError
from fl_server.db.institutions import Principal
from fl_server.db.models import Institution, PrivacyCharge
from fl_server.db.runs import RUN_ID_PATTERN, get_run
from fl_server.db.types import utcnow

router = APIRouter(prefix="/api/privacy", tags=["privacy"], responses=ERROR_RESPONSES)


def charge_query(who: Principal) -> Select[tuple[PrivacyCharge, str]]:
    query = (
        select(PrivacyCharge, Institution.name)
        .join(Institution, Institution.id == PrivacyCharge.institution_id)  # type: ignore[arg-type]
        .order_by(PrivacyCharge.run_id, PrivacyCharge.round, PrivacyCharge.id)
    )
    if not who.is_admin:
        query = query.where(PrivacyCharge.institution_id == who.institution_id)
    return query


def _out(charge: PrivacyCharge, institution: str) -> ChargeOut:
    data = charge.model_dump()
    data.pop("institution_id")
    return ChargeOut(**data, institution=institution)


def charges_out(session: Session, query: Select[tuple[PrivacyCharge, str]]) -> list[ChargeOut]:
    return [_out(c, name) for c, name in session.execute(query)]


@router.post("/charges", status_code=201, summary="Report a privacy charge (institution)")
def report(body: ChargeIn, who: InstitutionCaller, db: Db) -> ChargeOut:
    """One DP-SGD release on the caller's own data set; reporting the same
    (run, round, data set) twice is refused."""
    with db.write() as s:
        get_run(s, body.run_id)
        duplicate = s.scalars(
            select(PrivacyCharge.id).where(
                PrivacyCharge.institution_id == who.institution_id,
                PrivacyCharge.run_id == body.run_id,
                PrivacyCharge.round == body.round,
                PrivacyCharge.dataset == body.dataset,
            )
        ).first()
        if duplicate is not None:
            raise ConflictError(
                f"a charge for run {body.run_id} round {body.round} on {body.dataset} is already "
                "recorded; charges are never rewritten"
            )
        assert who.institution_id is not None
        charge = PrivacyCharge(
            institution_id=who.institution_id,
            **body.model_dump(exclude={"spent_at"}),
            spent_at=body.spent_at or utcnow(),
        )
        s.add(charge)
        s.flush()
        audit.append(
            s,
            actor=who.actor,
            action="privacy.charged",
            target=f"run:{body.run_id}/round:{body.round}",
            institution=who.institution,
            detail={"dataset": body.dataset, "epsilon": body.epsilon, "delta": body.delta},
        )
        return _out(charge, who.institution or "")


@router.get("/charges", summary="Privacy charges (an institution sees its own)")
def list_charges(
    who: Caller,
    db: Db,
    run_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[ChargeOut]:
    query = charge_query(who).limit(limit).offset(offset)
    if run_id is not None:
        query = query.where(PrivacyCharge.run_id == run_id)
    with db.read() as s:
        return charges_out(s, query)
