"""Institutions and their credentials: creation, key issue and rotation, authentication."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fl_server.db import audit
from fl_server.db.errors import ConflictError, NotFoundError, RecordError
from fl_server.db.keys import new_key, parse_key, secret_matches
from fl_server.db.models import ApiKey, Institution
from fl_server.db.types import utcnow

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one institution."""

    role: str  # "admin" | "institution"
    key_id: str
    institution: str | None = None
    institution_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        return f"admin:{self.key_id}" if self.is_admin else f"institution:{self.institution}"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise RecordError(
            f"institution name {name!r} is not allowed; use 1-64 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (the name its SuperNode reports)"
        )
    return name


def get_institution(session: Session, name: str) -> Institution:
    inst = session.scalars(select(Institution).where(Institution.name == name)).first()
    if inst is None:
        raise NotFoundError(f"no institution named {name!r}; list them with GET /api/institutions")
    return inst


def _issue(session: Session, role: str, institution: Institution | None, label: str) -> str:
    key = new_key()
    session.add(
        ApiKey(
            key_id=key.key_id,
            secret_hash=key.secret_hash,
            role=role,
            institution_id=institution.id if institution else None,
            label=label,
        )
    )
    session.flush()
    return key.token


def register_institution(
    session: Session, name: str, *, actor: str, display_name: str = "", contact: str = ""
) -> Institution:
    """The institution's record alone (no key: e.g. a simulated institution)."""
    check_name(name)
    if session.scalars(select(Institution.id).where(Institution.name == name)).first():
        raise ConflictError(f"institution {name!r} already exists; rotate its key instead")
    inst = Institution(name=name, display_name=display_name or name, contact=contact)
    session.add(inst)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="institution.created",
        target=f"institution:{name}",
        institution=name,
        detail={"display_name": inst.display_name},
    )
    return inst


def create_institution(
    session: Session, name: str, *, actor: str, display_name: str = "", contact: str = ""
) -> tuple[Institution, str]:
    """The new institution and its API key (the only time the key is visible)."""
    inst = register_institution(
        session, name, actor=actor, display_name=display_name, contact=contact
    )
    return inst, _issue(session, "institution", inst, "initial")


def rotate_key(session: Session, name: str, *, actor: str) -> str:
    """Revoke every key the institution has and issue a new one."""
    inst = get_institution(session, name)
    session.execute(
        update(ApiKey)
        .where(ApiKey.institution_id == inst.id, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow())
    )
    token = _issue(session, "institution", inst, "rotated")
    audit.append(
        session,
        actor=actor,
        action="institution.key_rotated",
        target=f"institution:{name}",
        institution=name,
    )
    return token


def create_admin_key(session: Session, *, actor: str, label: str = "admin") -> str:
    token = _issue(session, "admin", None, label)
    audit.append(session, actor=actor, action="admin_key.created", detail={"label": label})
    return token


def revoke_key(session: Session, key_id: str, *, actor: str) -> None:
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None:
        raise NotFoundError(f"no API key with id {key_id!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.append(session, actor=actor, action="key.revoked", target=f"key:{key_id}")


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown, revoked, or wrong secret)."""
    parsed = parse_key(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.execute(
        select(ApiKey, Institution)
        .join(Institution, ApiKey.institution_id == Institution.id, isouter=True)  # type: ignore[arg-type]
        .where(ApiKey.key_id == key_id)
    ).first()
    if row is None:
        return None
    key, inst = row
    if key.revoked_at is not None or not secret_matches(secret, key.secret_hash):
        return None
    if key.role == "admin":
        return Principal("admin", key_id)
    if inst is None or not inst.active:
        return None
    return Principal("institution", key_id, inst.name, inst.id)
