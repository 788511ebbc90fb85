"""Data set cards: published, replaced and withdrawn by their institution.

A card is validated against the graph's SHACL shapes, then stored in the database and the
knowledge graph in one step: the graph changes inside the database transaction, which is
committed before the graph lock is released, and the graph change is undone if the commit
fails. Either both keep the card or neither does.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from fl_server.api.auth import Caller, Db
from fl_server.api.errors import ERROR_RESPONSES, FieldError, error_response, forbidden
from fl_server.api.knowledge import Knowledge
from fl_server.api.schemas import DATASET_ID_PATTERN, CardSubmission, DatasetDetail, DatasetOut
from fl_server.db import audit
from fl_server.db.cards import CardInvalid, decode_card, find_dataset, parse_card, store_card
from fl_server.db.errors import ConflictError, NotFoundError
from fl_server.db.institutions import NAME_PATTERN, Principal, get_institution
from fl_server.db.models import Dataset, Institution
from fl_server.db.types import utcnow

router = APIRouter(prefix="/api/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
DatasetPath = Annotated[str, Path(pattern=DATASET_ID_PATTERN, max_length=128)]


def invalid_card_response(exc: CardInvalid) -> JSONResponse:
    fields = [FieldError(location="body.card", message=p) for p in exc.problems[:50]]
    return error_response(422, "invalid_card", str(exc), fields)


def _knowledge(request: Request) -> Knowledge:
    knowledge: Knowledge = request.app.state.knowledge
    return knowledge


def _out(row: Dataset, institution: str, detail: bool = False) -> Any:
    data = row.model_dump(exclude={"id", "institution_id", *(() if detail else ("card",))})
    return (DatasetDetail if detail else DatasetOut)(**data, institution=institution)


def _owner(session: Session, who: Principal, institution: str) -> Institution:
    if not who.is_admin and institution != who.institution:
        raise forbidden(
            f"{who.institution} cannot act on {institution}'s data sets; use that institution's key"
        )
    return get_institution(session, institution)


@router.post("", status_code=201, summary="Publish a data set card")
def submit(body: CardSubmission, request: Request, who: Caller, db: Db) -> DatasetDetail:
    """The card names its institution, which must be the caller's (the admin may publish for
    any registered institution). A withdrawn data set can be published again."""
    card = parse_card(body.card)
    with db.write() as s, _knowledge(request).graph() as kg:
        inst = _owner(s, who, card.institution)
        row = find_dataset(s, inst, card.dataset_id)
        if row is not None and row.withdrawn_at is None:
            raise ConflictError(
                f"{card.institution} already published {card.dataset_id!r}; replace it with "
                f"PUT /api/datasets/{card.institution}/{card.dataset_id}"
            )
        row = store_card(s, inst, card, str(card.card.iri), actor=who.actor)
        kg.add_card(card.card)
        try:
            s.commit()
        except BaseException:
            kg.remove_dataset(card.institution, card.dataset_id)
            raise
        return _out(row, card.institution, detail=True)


@router.put("/{institution}/{dataset_id}", summary="Replace a published card")
def replace(
    institution: NamePath,
    dataset_id: DatasetPath,
    body: CardSubmission,
    request: Request,
    who: Caller,
    db: Db,
) -> DatasetDetail:
    card = parse_card(body.card)
    if (card.institution, card.dataset_id) != (institution, dataset_id):
        raise CardInvalid(
            f"the card describes {card.institution}/{card.dataset_id}, not {institution}/{dataset_id}",
            ["the card's institution and dataset.id must match the URL"],
        )
    with db.write() as s, _knowledge(request).graph() as kg:
        inst = _owner(s, who, institution)
        row = find_dataset(s, inst, dataset_id)
        if row is None or row.withdrawn_at is not None:
            raise NotFoundError(
                f"{institution} has no published data set {dataset_id!r}; POST it first"
            )
        previous = decode_card(row.card)
        row = store_card(s, inst, card, str(card.card.iri), actor=who.actor)
        kg.add_card(card.card)  # replaces the card's named graph as a whole
        try:
            s.commit()
        except BaseException:
            kg.add_card(previous)
            raise
        return _out(row, institution, detail=True)


@router.delete("/{institution}/{dataset_id}", summary="Withdraw a data set")
def withdraw(
    institution: NamePath, dataset_id: DatasetPath, request: Request, who: Caller, db: Db
) -> DatasetOut:
    """Removes the card from the graph, so plans leave the data set out; the record stays."""
    from knowledge_graph.errors import KGError

    with db.write() as s, _knowledge(request).graph() as kg:
        inst = _owner(s, who, institution)
        row = find_dataset(s, inst, dataset_id)
        if row is None or row.withdrawn_at is not None:
            raise NotFoundError(f"{institution} has no published data set {dataset_id!r}")
        previous = decode_card(row.card)
        row.withdrawn_at = utcnow()
        audit.append(
            s,
            actor=who.actor,
            action="dataset.withdrawn",
            target=row.iri,
            institution=institution,
            detail={"dataset_id": dataset_id},
        )
        s.flush()
        with suppress(KGError):  # already absent from the graph: the record is what matters
            kg.remove_dataset(institution, dataset_id)
        try:
            s.commit()
        except BaseException:
            kg.add_card(previous)
            raise
        return _out(row, institution)


@router.get("", summary="Data sets (an institution sees its own)")
def list_datasets(who: Caller, db: Db, include_withdrawn: bool = False) -> list[DatasetOut]:
    query = (
        select(Dataset, Institution.name)
        .join(Institution, Institution.id == Dataset.institution_id)  # type: ignore[arg-type]
        .order_by(Institution.name, Dataset.dataset_id)
    )
    if not include_withdrawn:
        query = query.where(Dataset.withdrawn_at.is_(None))  # type: ignore[union-attr]
    if not who.is_admin:
        query = query.where(Dataset.institution_id == who.institution_id)
    with db.read() as s:
        return [_out(row, name) for row, name in s.execute(query)]


@router.get("/{institution}/{dataset_id}", summary="One data set, with its card")
def get_one(institution: NamePath, dataset_id: DatasetPath, who: Caller, db: Db) -> DatasetDetail:
    with db.read() as s:
        inst = _owner(s, who, institution)
        row = find_dataset(s, inst, dataset_id)
        if row is None:
            raise NotFoundError(f"{institution} has no data set {dataset_id!r}")
        return _out(row, institution, detail=True)
