"""The key ceremony and the two context files it writes.

One trusted party generates the federation's CKKS secret key once. The *secret* context
file (parameters + secret key) goes to every institution, out of band; the *public* one
(parameters + a commitment to the key, no key material) goes to the coordinator. Both are
JSON, written owner-only (0600), and carry the same fingerprint, so any two parties can
compare one line to know they are in the same federation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import tenseal.sealapi as seal

from privacy.he.context import PublicContext, SecretContext, fingerprint, seal_context
from privacy.he.errors import HEFingerprintError, HEKeyError, HEParamsError
from privacy.he.params import DEFAULT_PARAMS, HEParams
from privacy.he.serialization import save_bytes, seal_version

FORMAT = "fedkg-he-context/1"
SECRET_FILE = "he-secret-context.json"
PUBLIC_FILE = "he-public-context.json"
_KEY_ID_DOMAIN = b"fedkg-he-key-id/1\x00"


@dataclass(frozen=True)
class KeyFiles:
    secret: Path
    public: Path
    fingerprint: str


@dataclass(frozen=True)
class ContextInfo:
    """What a context file says about itself, without loading any key."""

    path: Path
    kind: str
    fingerprint: str
    params: HEParams
    created: str


def key_id(secret_key_bytes: bytes) -> str:
    """A commitment to the secret key: binds the fingerprint to it, reveals nothing."""
    return hashlib.sha256(_KEY_ID_DOMAIN + secret_key_bytes).hexdigest()


def generate_keys(
    out_dir: Path, params: HEParams = DEFAULT_PARAMS, *, force: bool = False
) -> KeyFiles:
    """Run the key ceremony: write the secret and the public context file into `out_dir`."""
    out_dir = Path(out_dir)
    secret_path, public_path = out_dir / SECRET_FILE, out_dir / PUBLIC_FILE
    if not force:
        for p in (secret_path, public_path):
            if p.exists():
                raise HEKeyError(
                    f"{p} already exists; replacing a federation's keys locks every "
                    "institution out of the running model: pick another --out or pass --force"
                )
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ctx = seal_context(params)
    sk_bytes = save_bytes(seal.KeyGenerator(ctx).secret_key())
    kid = key_id(sk_bytes)
    fp = fingerprint(params, kid)
    common: dict[str, Any] = {
        "format": FORMAT,
        "scheme": "CKKS",
        "seal-version": "{}.{}".format(*seal_version()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": params.to_dict(),
        "key-id": kid,
        "fingerprint": fp,
    }
    secret_doc = {"kind": "secret", **common, "secret-key": base64.b64encode(sk_bytes).decode()}
    public_doc = {"kind": "public", **common}
    _write_private(secret_path, secret_doc)
    _write_private(public_path, public_doc)
    return KeyFiles(secret=secret_path, public=public_path, fingerprint=fp)


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    """Owner-only from the first byte, and atomic: a crash leaves the old file or none."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HEKeyError(
            f"no HE context file at {path}; run `fl-client keys generate` or copy the "
            "federation's file there"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HEKeyError(f"{path} is not a fedkg HE context file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HEKeyError(f"{path} is not a fedkg HE context file (format {FORMAT} expected)")
    return doc


def _info(path: Path, doc: dict[str, Any]) -> ContextInfo:
    try:
        params = HEParams.from_dict(doc["params"])
        kid, fp = str(doc["key-id"]), str(doc["fingerprint"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, HEParamsError):
            raise HEKeyError(f"{path}: {exc}") from None
        raise HEKeyError(f"{path} is incomplete ({exc!s}); copy it again") from None
    if fingerprint(params, kid) != fp:
        raise HEKeyError(
            f"{path} was edited or corrupted (its fingerprint does not match); copy it again"
        )
    kind = "secret" if "secret-key" in doc or doc.get("kind") == "secret" else "public"
    return ContextInfo(path, kind, fp, params, str(doc.get("created", "")))


def read_context_info(path: Path) -> ContextInfo:
    """Kind, fingerprint and parameters of a context file (for `fl-client keys show`)."""
    path = Path(path)
    return _info(path, _read(path))


def _cache_key(path: Path) -> tuple[str, int, int, int]:
    resolved = Path(path).resolve()
    try:
        st = resolved.stat()
    except FileNotFoundError:
        _read(resolved)  # raises the one-line message
        raise
    return str(resolved), st.st_mtime_ns, st.st_size, st.st_ino


def load_public_context(path: Path) -> PublicContext:
    """The coordinator's context; refuses any file that holds a secret key. Cached per file."""
    return _load_public(*_cache_key(path))


def load_secret_context(path: Path) -> SecretContext:
    """An institution's context (parameters + secret key). Cached per file."""
    return _load_secret(*_cache_key(path))


@lru_cache(maxsize=16)
def _load_public(path: str, _mtime: int, _size: int, _ino: int) -> PublicContext:
    p = Path(path)
    doc = _read(p)
    info = _info(p, doc)
    if info.kind != "public":
        raise HEKeyError(
            f"{p} holds the federation's secret key: the coordinator must load the public "
            f"context ({PUBLIC_FILE}) and the secret file must leave this machine"
        )
    return PublicContext(info.params, str(doc["key-id"]))


@lru_cache(maxsize=16)
def _load_secret(path: str, _mtime: int, _size: int, _ino: int) -> SecretContext:
    p = Path(path)
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise HEKeyError(f"{p} is readable by others (mode {mode:04o}); run: chmod 600 {p}")
    doc = _read(p)
    info = _info(p, doc)
    if info.kind != "secret" or "secret-key" not in doc:
        raise HEKeyError(
            f"{p} is a public context without the secret key; an institution needs the "
            f"secret context ({SECRET_FILE}) from the federation's key ceremony"
        )
    try:
        sk_bytes = base64.b64decode(doc["secret-key"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise HEKeyError(f"{p}: the secret key is not valid base64; copy the file again") from None
    if key_id(sk_bytes) != doc["key-id"]:
        raise HEKeyError(f"{p}: the secret key does not match its key id; copy the file again")
    return SecretContext(info.params, str(doc["key-id"]), sk_bytes)


def require_fingerprint(ours: str, theirs: str, source: str) -> None:
    """Refuse to mix ciphertexts of two key ceremonies."""
    if ours != theirs:
        raise HEFingerprintError(
            f"{source} uses HE context {theirs[:16]}…, this party holds {ours[:16]}…: "
            "both must use files from the same key ceremony"
        )
