"""The round driver: a Flower strategy's configure/aggregate steps, with what production needs.

Flower's `Strategy.start` runs the rounds in one closed loop. The coordinator needs more at
each round boundary (who answered, who was refused and why, bytes on the wire, privacy spent,
records written as they happen), so this driver calls the same strategy methods in order
and reports each round to its listeners. The aggregation itself stays the strategy's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fl_client.data import FeatureStats
from fl_server.checkpoint import CheckpointStore

log = logging.getLogger("fedkg.federation")


class FederationError(RuntimeError):
    """The run cannot go on; the message says why and what to do."""


@dataclass
class RoundRecord:
    round: int
    metrics: dict[str, float]
    train_metrics: dict[str, float]
    clients: list[str]
    rejected: dict[str, str]
    bytes_up: int
    bytes_down: int
    seconds: float
    epsilon: dict[str, float] = field(default_factory=dict)


@dataclass
class FederationResult:
    arrays: ArrayRecord
    rounds: list[RoundRecord]
    institutions: dict[int, str]
    feature_stats: FeatureStats | None = None


class RoundListener(Protocol):
    def on_round(self, record: RoundRecord) -> None: ...


@dataclass
class FederationPlan:
    """Which institutions take part and the per-node settings each receives."""

    node_config: dict[str, dict[str, str | int | float | bool]] = field(default_factory=dict)
    allowed: set[str] | None = None  # None: every connected institution


def record_bytes(content: RecordDict) -> int:
    return sum(len(a.data) for rec in content.array_records.values() for a in rec.values())


def exchange(
    grid: Grid, messages: Iterable[Message], timeout: float, poll: float = 0.1
) -> list[Message]:
    """Push messages and collect the replies until all arrived or `timeout` passed.

    The same contract as `Grid.send_and_receive`, polling every `poll` seconds instead of
    Flower's fixed 3 s, which otherwise adds up to 3 s to every round trip in deployment.
    """
    pending = set(grid.push_messages(messages))
    deadline = time.monotonic() + timeout
    replies: list[Message] = []
    while pending:
        got = list(grid.pull_messages(pending))
        replies.extend(got)
        pending.difference_update(m.metadata.reply_to_message_id for m in got)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return replies


def wait_for_nodes(grid: Grid, minimum: int, timeout: float, poll: float = 0.5) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= minimum:
            return nodes
        if time.monotonic() > deadline:
            raise FederationError(
                f"only {len(nodes)} of the {minimum} institutions needed are connected after "
                f"{timeout:.0f} s; start their SuperNodes or lower --min-clients"
            )
        time.sleep(poll)


def identify_nodes(grid: Grid, node_ids: Sequence[int], timeout: float) -> dict[int, str]:
    """Ask every node who it is (node config is private to the node)."""
    messages = [
        Message(
            RecordDict({"query": ConfigRecord({"what": "identity"})}),
            dst_node_id=nid,
            message_type=MessageType.QUERY,
        )
        for nid in node_ids
    ]
    names: dict[int, str] = {}
    for reply in exchange(grid, messages, timeout):
        nid = reply.metadata.src_node_id
        if reply.has_error():
            log.warning("node %s did not identify itself: %s", nid, reply.error.reason)
            continue
        names[nid] = str(reply.content["identity"]["institution"])
    return names


def collect_feature_stats(
    grid: Grid,
    names: dict[int, str],
    plan: FederationPlan,
    train_config: ConfigRecord,
    timeout: float,
) -> FeatureStats:
    """Sum every eligible institution's feature statistics (count, sums, sums of squares).

    Only totals are needed; individual contributions are not kept.
    """
    query = RecordDict({"query": ConfigRecord({"what": "feature-stats"}), "config": train_config})
    messages = _with_node_config(
        (Message(query, dst_node_id=nid, message_type=MessageType.QUERY) for nid in names),
        names,
        plan,
    )
    total: np.ndarray | None = None
    for reply in exchange(grid, messages, timeout):
        who = names.get(reply.metadata.src_node_id, "?")
        if reply.has_error():
            log.warning("%s sent no feature statistics: %s", who, reply.error.reason)
            continue
        vec = next(iter(reply.content["stats"].values())).numpy().astype(np.float64)
        if total is not None and vec.shape != total.shape:
            log.warning("%s sent feature statistics of the wrong shape; ignored", who)
            continue
        total = vec if total is None else total + vec
    if total is None:
        raise FederationError("no institution returned feature statistics; check their logs")
    k = (len(total) - 1) // 2
    return FeatureStats(float(total[0]), tuple(total[1 : k + 1]), tuple(total[k + 1 :]))


def _with_node_config(
    messages: Iterable[Message], names: dict[int, str], plan: FederationPlan
) -> list[Message]:
    out = []
    for msg in messages:
        nid = msg.metadata.dst_node_id
        name = names.get(nid)
        if name is None or (plan.allowed is not None and name not in plan.allowed):
            continue
        content = RecordDict(dict(msg.content.items()))
        content["node"] = ConfigRecord(dict(plan.node_config.get(name, {})))
        out.append(Message(content, dst_node_id=nid, message_type=msg.metadata.message_type))
    return out


def screen_replies(
    replies: Iterable[Message], names: dict[int, str], *, expect_arrays: bool
) -> tuple[list[Message], dict[str, str]]:
    """Keep well-formed replies; a malformed one is refused with its reason, never aggregated."""
    valid: list[Message] = []
    rejected: dict[str, str] = {}
    reference: tuple[frozenset[str], ...] | None = None
    for msg in replies:
        who = names.get(msg.metadata.src_node_id, f"node-{msg.metadata.src_node_id}")
        if msg.has_error():
            rejected[who] = (
                msg.error.reason.strip().splitlines()[-1] if msg.error.reason else "error"
            )
            continue
        c = msg.content
        if len(c.metric_records) != 1 or "num-examples" not in next(
            iter(c.metric_records.values())
        ):
            rejected[who] = "reply carries no metrics with num-examples"
            continue
        if expect_arrays and len(c.array_records) != 1:
            rejected[who] = "reply carries no model update"
            continue
        shape = tuple(
            frozenset(r.keys()) for r in (*c.array_records.values(), *c.metric_records.values())
        )
        if reference is None:
            reference = shape
        elif shape != reference:
            rejected[who] = "reply's layout differs from the other institutions' (wrong model?)"
            continue
        valid.append(msg)
    return valid, rejected


def run_rounds(
    grid: Grid,
    strategy: Strategy,
    initial_arrays: ArrayRecord,
    train_config: ConfigRecord,
    *,
    num_rounds: int,
    names: dict[int, str],
    plan: FederationPlan | None = None,
    timeout: float = 3600.0,
    start_round: int = 1,
    listeners: Sequence[RoundListener] = (),
    checkpoints: CheckpointStore | None = None,
    run_id: str = "run",
) -> FederationResult:
    """Rounds `start_round`..`num_rounds`; each finished round is checkpointed before listeners
    hear of it, so a record in the database always has its global state on disk."""
    plan = plan or FederationPlan()
    arrays = initial_arrays
    records: list[RoundRecord] = []
    for rnd in range(start_round, num_rounds + 1):
        started = time.perf_counter()
        sent = _with_node_config(
            strategy.configure_train(rnd, arrays, train_config, grid), names, plan
        )
        if not sent:
            raise FederationError(f"round {rnd}: no eligible institution is connected")
        bytes_down = sum(record_bytes(m.content) for m in sent)
        replies = exchange(grid, sent, timeout)
        bytes_up = sum(record_bytes(m.content) for m in replies if not m.has_error())
        valid, rejected = screen_replies(replies, names, expect_arrays=True)
        answered = {names.get(m.metadata.src_node_id) for m in replies}
        for m in sent:
            who = names[m.metadata.dst_node_id]
            if who not in answered:
                rejected.setdefault(who, f"no reply within {timeout:.0f} s")
        for who, why in rejected.items():
            log.warning("round %d: %s left out: %s", rnd, who, why)
        new_arrays, train_metrics = strategy.aggregate_train(rnd, valid)
        if new_arrays is None:
            raise FederationError(
                f"round {rnd}: no institution returned a usable update ({'; '.join(rejected.values())})"
            )
        arrays = new_arrays

        evaluated = _with_node_config(
            strategy.configure_evaluate(rnd, arrays, train_config, grid), names, plan
        )
        bytes_down += sum(record_bytes(m.content) for m in evaluated)
        eval_replies = exchange(grid, evaluated, timeout)
        eval_valid, _ = screen_replies(eval_replies, names, expect_arrays=False)
        eval_metrics = strategy.aggregate_evaluate(rnd, eval_valid)

        epsilon = {
            names[m.metadata.src_node_id]: float(
                next(iter(m.content.metric_records.values()))["epsilon"]
            )
            for m in valid
            if "epsilon" in next(iter(m.content.metric_records.values()))
        }
        record = RoundRecord(
            round=rnd,
            metrics={k: float(v) for k, v in (eval_metrics or {}).items()},  # type: ignore[arg-type]
            train_metrics={k: float(v) for k, v in (train_metrics or {}).items()},  # type: ignore[arg-type]
            clients=sorted(names[m.metadata.src_node_id] for m in valid),
            rejected=rejected,
            bytes_up=bytes_up,
            bytes_down=bytes_down,
            seconds=time.perf_counter() - started,
            epsilon=epsilon,
        )
        records.append(record)
        if checkpoints is not None:
            checkpoints.save(run_id, rnd, arrays, {"record": asdict(record)})
        for listener in listeners:
            listener.on_round(record)
    return FederationResult(arrays=arrays, rounds=records, institutions=names)
