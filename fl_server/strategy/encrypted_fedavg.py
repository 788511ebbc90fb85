"""FedAvg over CKKS ciphertexts: the coordinator adds updates it cannot read.

Each institution sends its model scaled by its (secret) weight fraction, with the fraction
itself encrypted alongside (privacy.he.codec); the coordinator only sums, so the weighted
average and the total weight come out of one decryption on the institutions' side. The
strategy holds the public context only and refuses a secret one.

Metric averaging stays plaintext, as in Flower's FedAvg, weighted by "num-examples" which
institutions round to a power of two (fl_server.strategy.he_records.coarse_weight): the
exact sizes never leave the institutions, and loss curves stay weighted to within √2.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fl_server.strategy import he_records as wire
from privacy.he.codec import EncryptedSum
from privacy.he.context import PublicContext, SecretContext
from privacy.he.errors import HEError, HEKeyError
from privacy.he.keys import load_public_context, require_fingerprint

log = logging.getLogger("fedkg.strategy")


@dataclass
class HERoundStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    sum_seconds: float = 0.0
    accepted: int = 0
    rejected: int = 0


def _array_bytes(content: RecordDict) -> int:
    return sum(len(a.data) for rec in content.array_records.values() for a in rec.values())


def public_only(context: PublicContext | str | os.PathLike[str]) -> PublicContext:
    """The coordinator's context, guaranteed to hold no secret key."""
    if isinstance(context, str | os.PathLike):
        return load_public_context(Path(context))
    if isinstance(context, SecretContext) or context.has_secret_key:
        raise HEKeyError(
            "the coordinator was given a context holding the federation's secret key; give it "
            "the public context file (he-public-context.json) and keep the secret one off "
            "this machine"
        )
    if not isinstance(context, PublicContext):
        raise HEKeyError(
            f"expected a PublicContext or the public context file, got {type(context).__name__}"
        )
    return context


class EncryptedFedAvg(FedAvg):
    """Flower's FedAvg with the weighted average computed under CKKS encryption.

    `rejections[round][node_id]` says why a reply was left out of that round's sum and
    `round_stats[round]` records bytes each way and the seconds spent summing.
    """

    def __init__(self, context: PublicContext | str | os.PathLike[str], **fedavg: object) -> None:
        super().__init__(**fedavg)  # type: ignore[arg-type]
        self.context = public_only(context)
        self.rejections: dict[int, dict[int, str]] = {}
        self.round_stats: dict[int, HERoundStats] = {}
        self._rounds: dict[int, tuple[wire.RoundSpec, frozenset[int]]] = {}

    def summary(self) -> None:
        super().summary()
        p = self.context.params
        log.info(
            "HE: CKKS ring %d, primes %s, max weight %d, fingerprint %s",
            p.poly_modulus_degree,
            list(p.coeff_modulus_bits),
            p.max_weight,
            self.context.fingerprint[:16],
        )

    # -- instructions ---------------------------------------------------------------------
    def _with_he(
        self, server_round: int, arrays: ArrayRecord, messages: Iterable[Message]
    ) -> tuple[list[Message], wire.RoundSpec]:
        if wire.is_encrypted(arrays):
            meta = wire.read_meta(arrays)
            require_fingerprint(self.context.fingerprint, meta.fingerprint, "the global model")
        sent = list(messages)
        spec = wire.RoundSpec(
            fingerprint=self.context.fingerprint,
            server_round=server_round,
            cohort=max(1, len(sent)),
            values=wire.num_values(arrays),
        )
        he = spec.to_record()
        out = [
            Message(
                RecordDict({**dict(m.content.items()), wire.HE_KEY: he}),
                dst_node_id=m.metadata.dst_node_id,
                message_type=m.metadata.message_type,
            )
            for m in sent
        ]
        stats = self.round_stats.setdefault(server_round, HERoundStats())
        stats.bytes_sent += sum(_array_bytes(m.content) for m in out)
        return out, spec

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        out, spec = self._with_he(
            server_round, arrays, super().configure_train(server_round, arrays, config, grid)
        )
        self._rounds[server_round] = (spec, frozenset(m.metadata.dst_node_id for m in out))
        return out

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        out, _ = self._with_he(
            server_round, arrays, super().configure_evaluate(server_round, arrays, config, grid)
        )
        return out

    # -- the sum --------------------------------------------------------------------------
    def _metrics_reason(self, content: RecordDict) -> str | None:
        records = list(content.metric_records.values())
        if len(records) != 1 or self.weighted_by_key not in records[0]:
            return f"reply carries no single MetricRecord with '{self.weighted_by_key}'"
        weight = records[0][self.weighted_by_key]
        if not isinstance(weight, int | float) or not weight > 0:
            return f"'{self.weighted_by_key}' must be a positive number"
        return None

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Sum the valid replies' ciphertexts; a rejected reply never touches the sum."""
        if server_round not in self._rounds:
            raise HEError(f"aggregate_train for round {server_round} before configure_train")
        spec, asked = self._rounds[server_round]
        stats = self.round_stats.setdefault(server_round, HERoundStats())
        rejected: dict[int, str] = {}
        self.rejections[server_round] = rejected
        total = EncryptedSum(self.context, spec.values, spec.cohort)
        accepted: list[RecordDict] = []
        seen: set[int] = set()
        for msg in replies:
            node = msg.metadata.src_node_id
            reason = self._screen(msg, node, asked, seen)
            if reason is None:
                stats.bytes_received += _array_bytes(msg.content)
                try:
                    chunks = wire.unpack_reply(self.context, msg.content, spec)
                    started = time.perf_counter()
                    update = total.load(chunks)
                    total.add(update)
                    stats.sum_seconds += time.perf_counter() - started
                except HEError as exc:
                    reason = str(exc)
            if reason is not None:
                rejected[node] = reason
                log.warning("round %d: reply from node %d rejected: %s", server_round, node, reason)
                continue
            seen.add(node)
            accepted.append(msg.content)
        stats.accepted, stats.rejected = total.count, len(rejected)
        if not accepted:
            return None, None
        started = time.perf_counter()
        meta = wire.AggregateMeta(
            fingerprint=self.context.fingerprint,
            server_round=server_round,
            cohort=spec.cohort,
            values=spec.values,
            contributors=total.count,
        )
        arrays = wire.encrypted_arrays(total.to_bytes(), meta)
        stats.sum_seconds += time.perf_counter() - started
        return arrays, self.train_metrics_aggr_fn(accepted, self.weighted_by_key)

    def _screen(self, msg: Message, node: int, asked: frozenset[int], seen: set[int]) -> str | None:
        if msg.has_error():
            return f"error reply: {msg.error.reason}"
        if node not in asked:
            return "node was not asked to train in this round"
        if node in seen:
            return "second reply from this node in this round"
        return self._metrics_reason(msg.content)
