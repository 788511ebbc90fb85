"""SEAL objects to and from bytes, and the compact ciphertext form that travels.

`tenseal.sealapi` saves and loads only through file paths, so bytes pass through a private
scratch directory on tmpfs (/dev/shm, in memory) when the machine has one. SEAL compresses
what it saves with zstd; a CKKS residue is a uniformly random number below the prime q, so
zstd still spends about 8 bits more per residue than q has. The compact form therefore
stores each residue in exactly `ceil(log2 q / 8)` bytes and keeps the 64-byte seed that
replaces the second polynomial of a seeded (symmetric) ciphertext; the receiver rebuilds
SEAL's uncompressed layout and lets SEAL load and validate it.

SEAL 4 layout of a saved ciphertext (after its 16-byte header and decompression):
parms_id (4 x u64), is_ntt_form (u8), size, poly_modulus_degree, coeff_modulus_size (u64
each), scale (f64), correction_factor (u64), then a nested DynArray (16-byte header, u64
count, count x u64 residues) and, for a seeded ciphertext, a nested PRNG record (16-byte
header, u8 PRNG type, 64-byte seed). A seeded ciphertext's DynArray holds only c0.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import struct
import tempfile
import threading
import zlib
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np
import tenseal.sealapi as seal
import zstandard

from privacy.he.errors import HEFormatError

_MAGIC = 0xA15E
_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compression, -, size
_MEMBERS = struct.Struct("<4QBQQQdQ")  # parms_id, ntt, size, degree, primes, scale, correction
_COUNT = struct.Struct("<Q")
SEED_BYTES = 1 + 64  # PRNG type + seed
_COMPR_NONE, _COMPR_ZLIB, _COMPR_ZSTD = 0, 1, 2
_MAX_DECOMPRESSED = 1 << 31


class _Saveable(Protocol):
    def save(self, path: str, /) -> None: ...


class _Loadable(Protocol):
    def load(self, context: seal.SEALContext, path: str, /) -> None: ...


_counter = itertools.count()


@cache
def _scratch_dir(pid: int) -> Path:
    """A 0700 directory in memory when possible; one per process (forks get their own)."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix=f"fedkg-he-{pid}-", dir=base))
    atexit.register(shutil.rmtree, path, True)
    return path


def scratch_dir() -> Path:
    return _scratch_dir(os.getpid())


def _scratch_file() -> Path:
    return scratch_dir() / f"{threading.get_ident()}-{next(_counter)}"


def save_bytes(obj: _Saveable) -> bytes:
    """What SEAL's `save` writes, as bytes."""
    path = _scratch_file()
    try:
        obj.save(str(path))
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def load_from_bytes(obj: _Loadable, context: seal.SEALContext, data: bytes, what: str) -> None:
    """SEAL's `load` (which validates against the context) from bytes."""
    path = _scratch_file()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        obj.load(context, str(path))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise HEFormatError(f"{what} does not deserialise: {exc}") from None
    finally:
        path.unlink(missing_ok=True)


@cache
def seal_version() -> tuple[int, int]:
    """(major, minor) of the SEAL that tenseal links, read from a header SEAL writes."""
    params = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    params.set_poly_modulus_degree(1024)
    header = _HEADER.unpack_from(save_bytes(params))
    return header[2], header[3]


def _header(size: int) -> bytes:
    major, minor = seal_version()
    return _HEADER.pack(_MAGIC, _HEADER.size, major, minor, _COMPR_NONE, 0, size)


def _payload(data: bytes, what: str) -> bytes:
    """The decompressed body of one SEAL object."""
    if len(data) < _HEADER.size:
        raise HEFormatError(f"{what} is too short to be a SEAL object")
    magic, hsize, major, _minor, compr, _, size = _HEADER.unpack_from(data)
    if magic != _MAGIC or hsize != _HEADER.size or size != len(data):
        raise HEFormatError(f"{what} is not a SEAL object")
    if major != seal_version()[0]:
        raise HEFormatError(
            f"{what} was written by SEAL {major}.x, this tenseal links SEAL {seal_version()[0]}.x"
        )
    body = data[_HEADER.size :]
    if compr == _COMPR_NONE:
        return body
    if compr == _COMPR_ZSTD:
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=_MAX_DECOMPRESSED)
    if compr == _COMPR_ZLIB:
        return zlib.decompress(body)
    raise HEFormatError(f"{what} uses unknown SEAL compression mode {compr}")


class CiphertextShape:
    """Where the residues sit in SEAL's layout for one parameter set and scale."""

    def __init__(self, parms_id: list[int], degree: int, num_primes: int, coeff_bytes: int):
        self.parms_id = tuple(parms_id)
        self.degree = degree
        self.num_primes = num_primes
        self.coeff_bytes = coeff_bytes
        self.poly_words = degree * num_primes

    def seeded_size(self) -> int:
        """Compact bytes of a fresh seeded ciphertext: c0 and the seed of c1."""
        return self.poly_words * self.coeff_bytes + SEED_BYTES

    def full_size(self) -> int:
        """Compact bytes of a sum: both polynomials (a sum has no single seed)."""
        return 2 * self.poly_words * self.coeff_bytes

    # -- SEAL bytes -> compact ---------------------------------------------------------
    def compact(self, data: bytes, scale: float, *, seeded: bool, what: str) -> bytes:
        body = _payload(data, what)
        members = _MEMBERS.unpack_from(body)
        parms_id, (ntt, size, degree, primes, ct_scale, _) = members[:4], members[4:]
        got = (ntt, size, degree, primes)
        if parms_id != self.parms_id:
            raise HEFormatError(f"{what} belongs to other encryption parameters")
        if got != (1, 2, self.degree, self.num_primes) or ct_scale != scale:
            raise HEFormatError(
                f"{what} has layout (ntt, size, degree, primes) {got} at scale {ct_scale}, "
                f"expected {(1, 2, self.degree, self.num_primes)} at scale {scale}"
            )
        words = self.poly_words if seeded else 2 * self.poly_words
        offset = _MEMBERS.size + _HEADER.size
        (count,) = _COUNT.unpack_from(body, offset)
        offset += _COUNT.size
        end = offset + 8 * words
        trailer = SEED_BYTES + _HEADER.size if seeded else 0
        if count != words or len(body) != end + trailer:
            raise HEFormatError(f"{what}: unexpected SEAL ciphertext layout (seeded={seeded})")
        packed = _pack(
            np.frombuffer(body, dtype="<u8", count=words, offset=offset), self.coeff_bytes
        )
        if seeded:
            packed += body[end + _HEADER.size :]
        return packed

    # -- compact -> SEAL bytes -----------------------------------------------------------
    def expand(self, compact: bytes, scale: float, *, seeded: bool) -> bytes:
        words = self.poly_words if seeded else 2 * self.poly_words
        residue_bytes = words * self.coeff_bytes
        expected = residue_bytes + (SEED_BYTES if seeded else 0)
        if len(compact) != expected:
            raise HEFormatError(f"ciphertext chunk has {len(compact)} bytes, expected {expected}")
        residues = _unpack(compact[:residue_bytes], self.coeff_bytes, words)
        members = _MEMBERS.pack(*self.parms_id, 1, 2, self.degree, self.num_primes, scale, 1)
        array = _header(_HEADER.size + _COUNT.size + 8 * words) + _COUNT.pack(words) + residues
        trailer = _header(_HEADER.size + SEED_BYTES) + compact[residue_bytes:] if seeded else b""
        body = members + array + trailer
        return _header(_HEADER.size + len(body)) + body


def _pack(words: np.ndarray, width: int) -> bytes:
    as_bytes = words.view(np.uint8).reshape(-1, 8)
    if as_bytes[:, width:].any():
        raise HEFormatError(f"ciphertext residue wider than {width} bytes: parameters disagree")
    return as_bytes[:, :width].tobytes()


def _unpack(data: bytes, width: int, count: int) -> bytes:
    out = np.zeros((count, 8), dtype=np.uint8)
    out[:, :width] = np.frombuffer(data, dtype=np.uint8).reshape(count, width)
    return out.tobytes()
