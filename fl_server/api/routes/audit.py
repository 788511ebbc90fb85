"""The audit log: the admin reads all of it, an institution the entries that concern it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from fl_server.api.auth import Admin, Caller, Db
from fl_server.api.errors import ERROR_RESPONSES
from fl_server.api.schemas import AuditEntryOut, AuditPage, AuditVerification
from fl_server.db import audit
from fl_server.db.models import AuditEntry

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", summary="Audit log entries, oldest first, paged by sequence number")
def read_log(
    who: Caller,
    db: Db,
    after: Annotated[int, Query(ge=0, le=2**62, description="entries after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    newest_first: bool = False,
) -> AuditPage:
    query = select(AuditEntry).limit(limit)
    if newest_first:
        query = query.order_by(AuditEntry.seq.desc())  # type: ignore[attr-defined]
        if after:
            query = query.where(AuditEntry.seq < after)
    else:
        query = query.order_by(AuditEntry.seq).where(AuditEntry.seq > after)
    if not who.is_admin:
        query = query.where(AuditEntry.institution == who.institution)
    with db.read() as s:
        rows = list(s.scalars(query))
    entries = [AuditEntryOut.model_validate(r, from_attributes=True) for r in rows]
    return AuditPage(entries=entries, next_after=entries[-1].seq if len(entries) == limit else None)


@router.get("/verify", summary="Recompute the hash chain (admin)")
def verify(who: Admin, db: Db) -> AuditVerification:
    with db.read() as s:
        report = audit.verify(s)
    return AuditVerification(
        ok=report.ok, entries=report.entries, head_hash=report.head_hash, problems=report.problems
    )
