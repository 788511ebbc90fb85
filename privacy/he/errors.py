"""Exceptions for homomorphic aggregation; each message names what to do about it."""

from __future__ import annotations


class HEError(ValueError):
    """Base class: anything wrong with keys, parameters or ciphertexts."""


class HEParamsError(HEError):
    """CKKS parameters that are insecure, inconsistent or unsupported."""


class HEKeyError(HEError):
    """A context file that is missing, corrupted, foreign, or of the wrong kind."""


class HEFingerprintError(HEKeyError):
    """Two parties hold contexts of different federations (or different key ceremonies)."""


class HEFormatError(HEError):
    """Bytes that are not a ciphertext of this federation's parameters."""


class HERangeError(HEError):
    """A value or weight outside what the parameters can sum without overflow."""
