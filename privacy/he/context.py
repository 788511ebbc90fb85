"""Live CKKS contexts: the coordinator's public one (sums) and the institutions' secret one.

The federation uses symmetric (secret-key) encryption only: institutions share the secret
key, and the coordinator gets the parameters and nothing else. With no public key it cannot
even encrypt, so it cannot inject values of its own into an aggregate; it can only add.
"""

from __future__ import annotations

import hashlib
import math

import tenseal.sealapi as seal

from privacy.he.errors import HEKeyError, HEParamsError
from privacy.he.params import HEParams, cohort_scale
from privacy.he.serialization import CiphertextShape, load_from_bytes

_FINGERPRINT_DOMAIN = b"fedkg-he-fingerprint/1\x00"


def fingerprint(params: HEParams, key_id: str) -> str:
    """Names one key ceremony: its parameters and the commitment to its secret key."""
    h = hashlib.sha256(_FINGERPRINT_DOMAIN)
    h.update(params.canonical_bytes())
    h.update(b"\x00")
    h.update(key_id.encode())
    return h.hexdigest()


def seal_context(params: HEParams) -> seal.SEALContext:
    """SEAL's own check of the parameters at 128-bit security, on top of ours."""
    p = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    p.set_poly_modulus_degree(params.poly_modulus_degree)
    p.set_coeff_modulus(
        seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_modulus_bits))
    )
    ctx = seal.SEALContext(p, True, seal.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise HEParamsError(f"SEAL refuses the parameters: {ctx.parameters_error_message()}")
    return ctx


class HEContext:
    """Parameters made live: what adding ciphertexts and checking their shape needs."""

    has_secret_key = False

    def __init__(self, params: HEParams, key_id: str) -> None:
        self.params = params
        self.key_id = key_id
        self.fingerprint = fingerprint(params, key_id)
        self.seal = seal_context(params)
        self.evaluator = seal.Evaluator(self.seal)
        data_level = self.seal.first_context_data()
        primes = [m.value() for m in data_level.parms().coeff_modulus()]
        self.data_modulus = math.prod(primes)
        self.shape = CiphertextShape(
            self.seal.first_parms_id(),
            params.poly_modulus_degree,
            len(primes),
            params.coeff_bytes,
        )

    def scale(self, cohort: int) -> float:
        return cohort_scale(self.data_modulus, cohort, self.params.max_abs_value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fingerprint={self.fingerprint[:16]}…)"


class PublicContext(HEContext):
    """The coordinator's: parameters only. Can load and add ciphertexts, never decrypt."""


class SecretContext(HEContext):
    """An institution's: encrypts its update and decrypts the aggregate."""

    has_secret_key = True

    def __init__(self, params: HEParams, key_id: str, secret_key_bytes: bytes) -> None:
        super().__init__(params, key_id)
        self.secret_key = seal.SecretKey()
        try:
            load_from_bytes(self.secret_key, self.seal, secret_key_bytes, "the secret key")
        except ValueError as exc:
            raise HEKeyError(f"{exc}; the context file is corrupted") from None
        self.encoder = seal.CKKSEncoder(self.seal)
        self.encryptor = seal.Encryptor(self.seal, self.secret_key)
        self.decryptor = seal.Decryptor(self.seal, self.secret_key)

    def public(self) -> PublicContext:
        """The same federation's coordinator context."""
        return PublicContext(self.params, self.key_id)
