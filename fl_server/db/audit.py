"""The append-only audit log, hash-chained so that changing or deleting an entry shows.

Entry n's hash is SHA-256 over its own fields and entry n-1's hash. Appending locks the
one-row `audit_head` table first (an UPDATE), so concurrent writers queue and the chain never
forks; the append is part of the caller's transaction, so an action and its entry are
committed together or not at all. Triggers refuse UPDATE and DELETE on the table; `verify`
catches what someone with the database's owner rights could still do.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fl_server.db.models import GENESIS_HASH, AuditEntry, AuditHead
from fl_server.db.types import as_utc, utcnow


def _clean(value: Any) -> Any:
    """JSON-safe detail: NaN/inf become strings so that every backend stores the same text."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    institution: str | None,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": as_utc(at).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "institution": institution,
        "detail": detail,
        "prev": prev_hash,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    institution: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry inside the caller's transaction (committed with the action it records)."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    at = utcnow()
    clean = _clean(dict(detail or {}))
    digest = entry_hash(
        seq=head.seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        institution=institution,
        detail=clean,
        prev_hash=head.hash,
    )
    entry = AuditEntry(
        seq=head.seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        institution=institution,
        detail=clean,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
    session.flush()
    return entry


@dataclass
class AuditReport:
    ok: bool
    entries: int
    head_hash: str
    problems: list[str] = field(default_factory=list)


def _entries(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def verify(session: Session, *, max_problems: int = 20) -> AuditReport:
    """Recompute the chain from the first entry; report every break (up to `max_problems`)."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    for e in _entries(session):
        count += 1
        if e.seq != expected_seq:
            problems.append(f"entries {expected_seq}..{e.seq - 1} are missing")
        if e.prev_hash != prev:
            problems.append(f"entry {e.seq} does not link to the entry before it")
        digest = entry_hash(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            target=e.target,
            institution=e.institution,
            detail=e.detail,
            prev_hash=e.prev_hash,
        )
        if digest != e.hash:
            problems.append(f"entry {e.seq} ({e.action}) was altered after it was written")
        expected_seq, prev = e.seq + 1, e.hash
        if len(problems) >= max_problems:
            break
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    if head is None:
        problems.append("the audit head row is missing")
    elif len(problems) < max_problems and (head.seq != expected_seq - 1 or head.hash != prev):
        problems.append(
            f"the log ends at entry {expected_seq - 1} but its head records entry {head.seq}: "
            "entries were removed from the end"
        )
    return AuditReport(
        ok=not problems, entries=count, head_hash=prev, problems=problems[:max_problems]
    )
