"""Homomorphic aggregation with CKKS (TenSEAL's SEAL): keys, codec, encrypted sum.

Institutions share one secret key from a key ceremony (`fl-client keys generate`) and
encrypt their weighted updates; the coordinator holds parameters only and adds.
"""

from privacy.he.codec import (
    Average,
    ChunkLayout,
    EncryptedSum,
    StateLayout,
    chunk_layout,
    decrypt_average,
    encrypt_update,
    flatten_state,
    state_layout,
)
from privacy.he.context import HEContext, PublicContext, SecretContext
from privacy.he.errors import (
    HEError,
    HEFingerprintError,
    HEFormatError,
    HEKeyError,
    HEParamsError,
    HERangeError,
)
from privacy.he.keys import (
    PUBLIC_FILE,
    SECRET_FILE,
    ContextInfo,
    KeyFiles,
    generate_keys,
    load_public_context,
    load_secret_context,
    read_context_info,
    require_fingerprint,
)
from privacy.he.params import DEFAULT_PARAMS, HEParams

__all__ = [
    "DEFAULT_PARAMS",
    "PUBLIC_FILE",
    "SECRET_FILE",
    "Average",
    "ChunkLayout",
    "ContextInfo",
    "EncryptedSum",
    "HEContext",
    "HEError",
    "HEFingerprintError",
    "HEFormatError",
    "HEKeyError",
    "HEParams",
    "HEParamsError",
    "HERangeError",
    "KeyFiles",
    "PublicContext",
    "SecretContext",
    "StateLayout",
    "chunk_layout",
    "decrypt_average",
    "encrypt_update",
    "flatten_state",
    "generate_keys",
    "load_public_context",
    "load_secret_context",
    "read_context_info",
    "require_fingerprint",
    "state_layout",
]
