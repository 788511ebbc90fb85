"""Data set cards as the coordinator receives them: text from an institution, never a path.

`knowledge_graph.cards.load_card` also accepts file names; text arriving over the API must
not make the coordinator read its own files, nor fetch a remote JSON-LD context, so cards
are decoded here (YAML, JSON or inline-context JSON-LD) and handed over as parsed data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from fl_server.db import audit
from fl_server.db.errors import RecordError
from fl_server.db.models import Dataset, Institution
from fl_server.db.types import utcnow


class CardInvalid(RecordError):
    """The card does not parse or breaks the graph's shapes; `problems` lists why."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class ParsedCard:
    card: Any  # knowledge_graph.cards.Card
    text: str
    institution: str
    dataset_id: str
    title: str
    modality: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _remote_context(node: Any) -> bool:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("@context", "@import") and (
                isinstance(value, str)
                or (isinstance(value, list) and any(isinstance(v, str) for v in value))
            ):
                return True
            if _remote_context(value):
                return True
    elif isinstance(node, list):
        return any(_remote_context(v) for v in node)
    return False


def decode_card(text: str) -> Any:
    """The Card a text holds, not yet validated."""
    from knowledge_graph.cards import Card, card_from_jsonld

    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardInvalid(f"the card is not valid JSON: {exc}", [str(exc)]) from None
        if _remote_context(raw):
            raise CardInvalid(
                "the card's JSON-LD refers to a remote @context; inline the context",
                ["remote @context"],
            )
        jsonld = isinstance(raw, list) or any(str(k).startswith("@") for k in raw)
        return card_from_jsonld(text) if jsonld else Card.from_dict(raw)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CardInvalid(
            f"the card is not valid YAML{where}; check indentation and colons", [str(exc)]
        ) from None
    return Card.from_dict(raw)


def parse_card(text: str) -> ParsedCard:
    """Decode and validate a card against the graph's SHACL shapes; CardInvalid on any problem."""
    from knowledge_graph.cards import validate_card
    from knowledge_graph.errors import KGError

    try:
        card = decode_card(text)
        problems = [str(p) for p in validate_card(card)]
    except KGError as exc:
        raise CardInvalid(f"the card is invalid: {exc}", [str(exc)]) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CardInvalid(f"the card cannot be read: {exc}", [str(exc)]) from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CardInvalid(f"the card breaks the graph's shapes: {problems[0]}{more}", problems)
    return ParsedCard(
        card=card,
        text=text,
        institution=str(card.institution),
        dataset_id=str(card.dataset_id),
        title=str(card.title or ""),
        modality=str(card.modality or ""),
    )


def find_dataset(session: Session, institution: Institution, dataset_id: str) -> Dataset | None:
    return session.scalars(
        select(Dataset).where(
            Dataset.institution_id == institution.id, Dataset.dataset_id == dataset_id
        )
    ).first()


def store_card(
    session: Session, institution: Institution, card: ParsedCard, iri: str, *, actor: str
) -> Dataset:
    """Create, replace or re-publish the data set row for `card` (the caller checks which is
    allowed) and log it, inside the caller's transaction."""
    row = find_dataset(session, institution, card.dataset_id)
    action = "dataset.published"
    if row is None:
        row = Dataset(
            institution_id=institution.id or 0,
            dataset_id=card.dataset_id,
            iri=iri,
            card=card.text,
            card_sha256=card.sha256,
        )
        session.add(row)
    elif row.withdrawn_at is None:
        action = "dataset.replaced"
    row.iri, row.card, row.card_sha256 = iri, card.text, card.sha256
    row.title, row.modality = card.title[:500], card.modality[:32]
    row.updated_at, row.withdrawn_at = utcnow(), None
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        target=iri,
        institution=institution.name,
        detail={"dataset_id": card.dataset_id, "card_sha256": card.sha256},
    )
    return row
