"""API keys: `fedkg_<key id>_<secret>`. The key id finds the row; only SHA-256(secret) is kept.

The secret has 256 bits of entropy, so a plain SHA-256 is as strong as a slow password hash
would be and keeps every authenticated request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "fedkg"


@dataclass(frozen=True)
class NewKey:
    token: str  # shown once, never stored
    key_id: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(f"{PREFIX}_{key_id}_{secret}", key_id, hash_secret(secret))


def parse_key(token: str) -> tuple[str, str] | None:
    """(key id, secret), or None if `token` does not have the shape of a key."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]):
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
