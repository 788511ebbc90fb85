"""Flower strategies of the coordinator: federated averaging under homomorphic encryption.

`he_records` (the wire format) is imported by institutions too, so this package imports
the strategy itself only on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fl_server.strategy.encrypted_fedavg import EncryptedFedAvg, HERoundStats

__all__ = ["EncryptedFedAvg", "HERoundStats"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fl_server.strategy import encrypted_fedavg

        return getattr(encrypted_fedavg, name)
    raise AttributeError(name)
