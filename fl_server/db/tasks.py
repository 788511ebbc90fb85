"""The task registry mirrored into the database (the registry itself is code)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from fl_server.db.models import TaskRow
from fl_server.db.types import utcnow


@lru_cache(maxsize=1)
def registry_tasks() -> tuple[dict[str, Any], ...]:
    """Every registered task as plain data (imported lazily: the registry pulls in torch)."""
    from fl_client.tasks import list_tasks

    out = []
    for t in list_tasks():
        schema = t.schema

        def column(c: Any) -> dict[str, Any]:
            return {
                "name": c.name,
                "kind": c.kind,
                "categories": list(c.categories),
                "unit": c.unit,
                "description": c.description,
            }

        out.append(
            {
                "name": t.name,
                "modality": t.modality,
                "description": t.description,
                "purpose": t.purpose,
                "columns": [column(c) for c in schema.columns],
                "target": column(schema.target),
            }
        )
    return tuple(out)


def sync_tasks(session: Session) -> list[TaskRow]:
    """Insert or update every registered task; returns the rows."""
    rows = []
    for spec in registry_tasks():
        row = session.get(TaskRow, spec["name"])
        if row is None:
            row = TaskRow(**spec)
            session.add(row)
        elif any(getattr(row, k) != v for k, v in spec.items()):
            for key, value in spec.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
        rows.append(row)
    session.flush()
    return rows
