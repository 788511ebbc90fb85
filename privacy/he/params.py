"""The federation's CKKS parameters: one immutable record, fixed at the key ceremony.

The defaults are the cheapest on the wire that keep the aggregation error below 1e-5 for
1,000 institutions (measured and explained in docs/he_parameters.md): ring 2048, one 48-bit
prime, complex packing (two values per slot) and seeded symmetric ciphertexts stored at
6 bytes per coefficient, i.e. 6 bytes per model value.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from privacy.he.errors import HEParamsError

# SEAL's bound on the total coefficient-modulus bits for 128-bit classical security
# (HomomorphicEncryption.org standard, as enforced by SEAL's sec_level_type::tc128).
SEAL_MAX_BITS_128: dict[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}

# SEAL creates primes of 2..60 bits; below 20 bits CKKS has no room for a useful scale.
MIN_PRIME_BITS = 20
MAX_PRIME_BITS = 60

# Fraction of q/2 left free under the worst-case sum, for encoding and encryption noise.
HEADROOM = 1.0 / 64.0


@dataclass(frozen=True)
class HEParams:
    """What every party must agree on; hashed into the federation's fingerprint.

    `max_weight` and `max_abs_value` bound what one institution may add: it scales its
    update by `weight / max_weight` (at most 1) and every scaled value must stay within
    `max_abs_value`, so a cohort of n institutions can never overflow the modulus.
    """

    poly_modulus_degree: int = 2048
    coeff_modulus_bits: tuple[int, ...] = (48,)
    max_abs_value: float = 10.0
    max_weight: int = 1 << 20
    weight_replicas: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "coeff_modulus_bits", tuple(int(b) for b in self.coeff_modulus_bits)
        )
        self.validate()

    def validate(self) -> None:
        n = self.poly_modulus_degree
        if n not in SEAL_MAX_BITS_128:
            raise HEParamsError(
                f"poly_modulus_degree {n} is not supported; use one of {sorted(SEAL_MAX_BITS_128)}"
            )
        bits = self.coeff_modulus_bits
        if not bits or any(not MIN_PRIME_BITS <= b <= MAX_PRIME_BITS for b in bits):
            raise HEParamsError(
                f"coeff_modulus_bits {list(bits)}: each prime needs "
                f"{MIN_PRIME_BITS}..{MAX_PRIME_BITS} bits"
            )
        if sum(bits) > SEAL_MAX_BITS_128[n]:
            raise HEParamsError(
                f"coeff_modulus_bits {list(bits)} total {sum(bits)} bits, above the "
                f"{SEAL_MAX_BITS_128[n]} bits that ring {n} allows at 128-bit security; "
                "use fewer or smaller primes or a larger ring"
            )
        if not (math.isfinite(self.max_abs_value) and self.max_abs_value > 0):
            raise HEParamsError("max_abs_value must be a positive number")
        if self.max_weight < 1:
            raise HEParamsError("max_weight must be at least 1 example")
        if not 1 <= self.weight_replicas <= n // 2:
            raise HEParamsError(f"weight_replicas must be within 1..{n // 2}")

    @property
    def data_prime_bits(self) -> tuple[int, ...]:
        """Primes a ciphertext carries: all but SEAL's key-switching prime, if there is one."""
        bits = self.coeff_modulus_bits
        return bits if len(bits) == 1 else bits[:-1]

    @property
    def values_per_chunk(self) -> int:
        """Two reals per complex slot, N/2 slots per ciphertext."""
        return self.poly_modulus_degree

    @property
    def coeff_bytes(self) -> int:
        """Bytes that store one residue on the wire (the widest data prime, rounded up)."""
        return math.ceil(max(self.data_prime_bits) / 8)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["coeff_modulus_bits"] = list(self.coeff_modulus_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HEParams:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise HEParamsError(
                f"unknown CKKS parameter(s) {sorted(unknown)}; the context file was written "
                "by a newer fedkg: upgrade fedkg"
            )
        missing = known - set(d)
        if missing:
            raise HEParamsError(
                f"CKKS parameter(s) {sorted(missing)} missing from the context file"
            )
        return cls(
            poly_modulus_degree=int(d["poly_modulus_degree"]),
            coeff_modulus_bits=tuple(int(b) for b in d["coeff_modulus_bits"]),
            max_abs_value=float(d["max_abs_value"]),
            max_weight=int(d["max_weight"]),
            weight_replicas=int(d["weight_replicas"]),
        )

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()


DEFAULT_PARAMS = HEParams()


def cohort_scale(data_modulus: int, cohort: int, max_abs_value: float) -> float:
    """CKKS scale for a sum of `cohort` contributions, each within ±max_abs_value.

    Derived from the actual modulus so that the worst-case sum stays inside (-q/2, q/2):
    the largest scale, hence the finest precision, that cannot overflow.
    """
    if cohort < 1:
        raise HEParamsError(f"cohort size must be at least 1, got {cohort}")
    return data_modulus / 2.0 * (1.0 - HEADROOM) / (cohort * max_abs_value)
