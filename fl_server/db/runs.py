"""Runs and their rounds: the writes the ServerApp, the ingester and the API share."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from fl_server.db import audit
from fl_server.db.errors import ConflictError, NotFoundError, RecordError
from fl_server.db.models import RUN_STATUSES, RoundRow, Run, RunParticipant
from fl_server.db.types import utcnow

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)
FINAL_STATUSES = ("finished", "failed", "cancelled")
_ROUND_FIELDS = (
    "metrics",
    "train_metrics",
    "clients",
    "rejected",
    "bytes_up",
    "bytes_down",
    "seconds",
    "epsilon",
    "per_client",
    "he",
)


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise RecordError(
            f"run id {run_id!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-'"
        )
    return run_id


def json_safe(value: Any) -> Any:
    """Plain JSON: non-finite floats become null (neither JSON nor PostgreSQL takes NaN)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)


def total_rounds_of(config: Mapping[str, Any]) -> int | None:
    for key in ("total_rounds", "num-server-rounds", "rounds"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r}; list runs with GET /api/runs or fl-server status")
    return run


def add_participants(
    session: Session,
    run_id: str,
    names: Iterable[str],
    details: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    existing = set(
        session.scalars(select(RunParticipant.institution).where(RunParticipant.run_id == run_id))
    )
    for name in sorted(set(names) - existing):
        info = (details or {}).get(name, {})
        records = info.get("records")
        session.add(
            RunParticipant(
                run_id=run_id,
                institution=str(name)[:64],
                dataset=str(info.get("dataset", ""))[:200],
                records=int(records) if isinstance(records, int | float) else None,
            )
        )
    session.flush()


def ensure_run(
    session: Session,
    run_id: str,
    task: str,
    config: Mapping[str, Any],
    *,
    actor: str,
    status: str = "running",
    total_rounds: int | None = None,
) -> Run:
    """Create the run, or move an existing one (created through the API, or resumed) on."""
    check_run_id(run_id)
    if status not in RUN_STATUSES:
        raise RecordError(f"unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    clean = json_safe(dict(config))
    run = session.get(Run, run_id)
    now = utcnow()
    if run is None:
        run = Run(
            id=run_id,
            task=task,
            status=status,
            config=clean,
            total_rounds=total_rounds or total_rounds_of(clean),
            created_by=actor,
            started_at=now if status == "running" else None,
        )
        session.add(run)
        session.flush()
        audit.append(
            session,
            actor=actor,
            action="run.created" if status == "created" else "run.started",
            target=f"run:{run_id}",
            detail={"task": task, "status": status},
        )
        return run
    if run.task != task:
        raise ConflictError(
            f"run {run_id!r} exists for task {run.task!r}, not {task!r}; pick another run id"
        )
    if run.status != status:
        if run.status in FINAL_STATUSES and status == "running":
            run.finished_at = None
        run.status = status
        if status == "running" and run.started_at is None:
            run.started_at = now
        audit.append(
            session, actor=actor, action=f"run.{status}", target=f"run:{run_id}", detail={}
        )
    run.config = {**run.config, **clean}
    run.total_rounds = total_rounds or run.total_rounds or total_rounds_of(run.config)
    run.updated_at = now
    session.flush()
    return run


def round_fields(record: Any) -> dict[str, Any]:
    """A RoundRecord (or its dict form, as in metrics.json) as the columns of `rounds`."""
    raw = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)
    rnd = raw.get("round")
    if not isinstance(rnd, int) or isinstance(rnd, bool) or rnd < 1:
        raise RecordError(f"a round record needs a positive integer 'round', got {rnd!r}")
    out: dict[str, Any] = {"round": rnd}
    for key in _ROUND_FIELDS:
        value = json_safe(raw.get(key))
        if key in ("bytes_up", "bytes_down"):
            out[key] = int(value or 0)
        elif key == "seconds":
            out[key] = float(value or 0.0)
        elif key == "clients":
            out[key] = sorted(str(c) for c in (value or []))
        else:
            if value is not None and not isinstance(value, dict):
                raise RecordError(
                    f"round {rnd}: {key!r} must be an object, got {type(value).__name__}"
                )
            out[key] = value or {}
    return out


def record_round(session: Session, run_id: str, record: Any, *, actor: str) -> bool:
    """Store a finished round and advance the run's last completed round, in the caller's
    transaction. A round already stored with the same content is a no-op (a resumed run
    replays its last round); different content replaces it. True if anything changed."""
    run = get_run(session, run_id)
    fields = round_fields(record)
    rnd = fields["round"]
    row = session.scalars(
        select(RoundRow).where(RoundRow.run_id == run_id, RoundRow.round == rnd)
    ).first()
    if row is not None:
        same = all(
            json.dumps(getattr(row, k), sort_keys=True) == json.dumps(v, sort_keys=True)
            for k, v in fields.items()
        )
        if same:
            return False
        for key, value in fields.items():
            setattr(row, key, value)
        row.recorded_at = utcnow()
        action = "round.replaced"
    else:
        session.add(RoundRow(run_id=run_id, **fields))
        action = "round.recorded"
    add_participants(session, run_id, [*fields["clients"], *fields["rejected"]])
    run.last_completed_round = max(run.last_completed_round, rnd)
    run.updated_at = utcnow()
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        target=f"run:{run_id}/round:{rnd}",
        detail={"clients": fields["clients"], "rejected": fields["rejected"]},
    )
    return True


def finish_run(
    session: Session,
    run_id: str,
    status: str,
    final: Mapping[str, Any] | None,
    *,
    actor: str,
) -> Run:
    if status not in FINAL_STATUSES:
        raise RecordError(f"a run ends as one of {', '.join(FINAL_STATUSES)}, not {status!r}")
    run = get_run(session, run_id)
    run.status = status
    run.final = json_safe(dict(final)) if final is not None else run.final
    run.finished_at = utcnow()
    run.updated_at = run.finished_at
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=f"run.{status}",
        target=f"run:{run_id}",
        detail={"last_completed_round": run.last_completed_round},
    )
    return run


def latest_metrics(session: Session, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's metrics at its last completed round."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(RoundRow.run_id, RoundRow.metrics)
        .join(Run, and_(Run.id == RoundRow.run_id, Run.last_completed_round == RoundRow.round))
        .where(RoundRow.run_id.in_(run_ids))  # type: ignore[attr-defined]
    )
    return {run_id: metrics for run_id, metrics in rows}
