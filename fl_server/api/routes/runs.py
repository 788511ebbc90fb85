"""Runs, their rounds and metrics: the admin sees every run, an institution those it is in."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from fl_server.api.auth import Admin, Caller, Db
from fl_server.api.errors import ERROR_RESPONSES, forbidden
from fl_server.api.schemas import (
    ChargeOut,
    ParticipantOut,
    Rejection,
    RoundOut,
    RunCreate,
    RunDetail,
    RunSeries,
    RunStatusOut,
    RunSummary,
)
from fl_server.db.errors import ConflictError, NotFoundError, RecordError
from fl_server.db.institutions import Principal
from fl_server.db.models import (
    RUN_STATUSES,
    Institution,
    PrivacyCharge,
    RoundRow,
    Run,
    RunParticipant,
)
from fl_server.db.runs import (
    RUN_ID_PATTERN,
    add_participants,
    ensure_run,
    get_run,
    latest_metrics,
)
from fl_server.db.tasks import registry_tasks

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=ERROR_RESPONSES)
RunPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, max_length=64)]


def visible_run(session: Session, who: Principal, run_id: str) -> Run:
    run = get_run(session, run_id)
    if not who.is_admin:
        part = session.get(RunParticipant, (run_id, who.institution))
        if part is None:
            raise forbidden(f"{who.institution} does not take part in run {run_id}")
    return run


def _summary_fields(run: Run, latest: dict[str, Any] | None) -> dict[str, Any]:
    scenario = run.config.get("scenario")
    return {
        "id": run.id,
        "status": run.status,
        "last_completed_round": run.last_completed_round,
        "total_rounds": run.total_rounds,
        "updated_at": run.updated_at,
        "task": run.task,
        "scenario": scenario if isinstance(scenario, str) else None,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "latest_metrics": latest or {},
    }


def _own_only(values: dict[str, Any], who: Principal) -> dict[str, Any]:
    """An institution sees its own entry of per-institution figures, not the others'."""
    if who.is_admin:
        return values
    return {k: v for k, v in values.items() if k == who.institution}


def round_out(row: RoundRow, who: Principal) -> RoundOut:
    return RoundOut(
        round=row.round,
        metrics=row.metrics,
        train_metrics=row.train_metrics,
        clients=row.clients,
        rejected=_own_only(row.rejected, who),
        bytes_up=row.bytes_up,
        bytes_down=row.bytes_down,
        seconds=row.seconds,
        epsilon=_own_only(row.epsilon, who),
        per_client=_own_only(row.per_client, who),
        he=row.he,
        recorded_at=row.recorded_at,
    )


def _rounds(session: Session, run_id: str) -> list[RoundRow]:
    return list(
        session.scalars(select(RoundRow).where(RoundRow.run_id == run_id).order_by(RoundRow.round))
    )


@router.post("", status_code=201, summary="Create a run record (admin)")
def create_run(body: RunCreate, who: Admin, db: Db) -> RunDetail:
    """The ServerApp started with this run id moves it to `running` and records its rounds."""
    tasks = {t["name"] for t in registry_tasks()}
    if body.task not in tasks:
        raise RecordError(f"unknown task {body.task!r}; choose one of: {', '.join(sorted(tasks))}")
    run_id = body.id or uuid.uuid4().hex[:12]
    with db.write() as s:
        if s.get(Run, run_id) is not None:
            raise ConflictError(f"run {run_id!r} already exists; pick another id")
        known = set(
            s.scalars(select(Institution.name).where(Institution.name.in_(body.participants)))  # type: ignore[attr-defined]
        )
        unknown = sorted(set(body.participants) - known)
        if unknown:
            raise RecordError(
                f"unknown institutions {', '.join(unknown)}; register them with POST /api/institutions"
            )
        run = ensure_run(s, run_id, body.task, body.config, actor=who.actor, status="created")
        add_participants(s, run_id, body.participants)
        return _detail(s, run, who)


def _detail(session: Session, run: Run, who: Principal) -> RunDetail:
    parts = session.scalars(
        select(RunParticipant)
        .where(RunParticipant.run_id == run.id)
        .order_by(RunParticipant.institution)
    )
    latest = latest_metrics(session, [run.id]).get(run.id)
    return RunDetail(
        **_summary_fields(run, latest),
        config=run.config,
        final=run.final,
        created_by=run.created_by,
        started_at=run.started_at,
        participants=[ParticipantOut.model_validate(p, from_attributes=True) for p in parts],
    )


@router.get("", summary="Runs, newest first (an institution sees those it takes part in)")
def list_runs(
    who: Caller,
    db: Db,
    status: Annotated[str | None, Query(description=f"one of {', '.join(RUN_STATUSES)}")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[RunSummary]:
    if status is not None and status not in RUN_STATUSES:
        raise RecordError(f"unknown status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    query = select(Run).order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)  # type: ignore[attr-defined]
    if status is not None:
        query = query.where(Run.status == status)
    if not who.is_admin:
        query = query.where(
            Run.id.in_(  # type: ignore[attr-defined]
                select(RunParticipant.run_id).where(RunParticipant.institution == who.institution)
            )
        )
    with db.read() as s:
        runs = list(s.scalars(query))
        latest = latest_metrics(s, [r.id for r in runs])
    return [RunSummary(**_summary_fields(r, latest.get(r.id))) for r in runs]


@router.get("/{run_id}", summary="One run: configuration, participants, final metrics")
def get_one(run_id: RunPath, who: Caller, db: Db) -> RunDetail:
    with db.read() as s:
        return _detail(s, visible_run(s, who, run_id), who)


@router.get("/{run_id}/status", summary="A run's status and progress (cheap, for polling)")
def status_of(run_id: RunPath, who: Caller, db: Db) -> RunStatusOut:
    with db.read() as s:
        run = visible_run(s, who, run_id)
    return RunStatusOut(
        id=run.id,
        status=run.status,
        last_completed_round=run.last_completed_round,
        total_rounds=run.total_rounds,
        updated_at=run.updated_at,
    )


@router.get("/{run_id}/rounds", summary="Every stored round of a run")
def rounds_of(run_id: RunPath, who: Caller, db: Db) -> list[RoundOut]:
    with db.read() as s:
        visible_run(s, who, run_id)
        return [round_out(r, who) for r in _rounds(s, run_id)]


@router.get("/{run_id}/rounds/{round_number}", summary="One round of a run")
def round_of(
    run_id: RunPath,
    round_number: Annotated[int, Path(ge=1, le=1_000_000)],
    who: Caller,
    db: Db,
) -> RoundOut:
    with db.read() as s:
        visible_run(s, who, run_id)
        row = s.scalars(
            select(RoundRow).where(RoundRow.run_id == run_id, RoundRow.round == round_number)
        ).first()
        if row is None:
            raise NotFoundError(f"run {run_id} has no round {round_number} stored")
        return round_out(row, who)


@router.get("/{run_id}/metrics", summary="Per-round series for plotting")
def series_of(run_id: RunPath, who: Caller, db: Db) -> RunSeries:
    with db.read() as s:
        visible_run(s, who, run_id)
        rows = [round_out(r, who) for r in _rounds(s, run_id)]
    return series(run_id, rows)


def series(run_id: str, rows: list[RoundOut]) -> RunSeries:
    def columns(pick: str) -> dict[str, list[float | None]]:
        names = sorted({k for r in rows for k in getattr(r, pick)})
        return {n: [getattr(r, pick).get(n) for r in rows] for n in names}

    return RunSeries(
        run_id=run_id,
        rounds=[r.round for r in rows],
        metrics=columns("metrics"),
        train_metrics=columns("train_metrics"),
        epsilon=columns("epsilon"),
        participants=[len(r.clients) for r in rows],
        rejected=[len(r.rejected) for r in rows],
        rejections=[
            Rejection(round=r.round, institution=k, reason=v)
            for r in rows
            for k, v in sorted(r.rejected.items())
        ],
        bytes_up=[r.bytes_up for r in rows],
        bytes_down=[r.bytes_down for r in rows],
        seconds=[r.seconds for r in rows],
    )


@router.get("/{run_id}/privacy", summary="Privacy charges reported for a run")
def charges_of(run_id: RunPath, who: Caller, db: Db) -> list[ChargeOut]:
    """An institution sees its own charges (even for a run it is not listed in yet)."""
    from fl_server.api.routes.privacy import charge_query, charges_out

    with db.read() as s:
        get_run(s, run_id)
        return charges_out(s, charge_query(who).where(PrivacyCharge.run_id == run_id))
