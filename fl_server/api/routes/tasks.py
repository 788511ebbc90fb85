"""The tasks the federation can train."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from fl_server.api.auth import Caller, Db
from fl_server.api.errors import ERROR_RESPONSES
from fl_server.api.schemas import TaskOut
from fl_server.db.models import TaskRow

router = APIRouter(prefix="/api", tags=["tasks"], responses=ERROR_RESPONSES)


@router.get("/tasks", summary="Tasks the federation can train, with the columns each expects")
def list_tasks(who: Caller, db: Db) -> list[TaskOut]:
    with db.read() as s:
        rows = list(s.scalars(select(TaskRow).order_by(TaskRow.name)))
    return [TaskOut.model_validate(r, from_attributes=True) for r in rows]
