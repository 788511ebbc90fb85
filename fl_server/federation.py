"""The round driver: a Flower strategy's configure/aggregate steps, with what production needs.

Flower's `Strategy.start` runs the rounds in one closed loop. The coordinator needs more at
each round boundary (who answered, who was refused and why, bytes on the wire, privacy spent,
records written as they happen), so this driver calls the same strategy methods in order
and reports each round to its listeners. The aggregation itself stays the strategy's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
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
    per_client: dict[str, dict[str, float]] = field(default_factory=dict)
    he: dict[str, float] = field(default_factory=dict)


# What an institution reports about its own round that the coordinator keeps per client.
_PER_CLIENT_METRICS = frozenset({"epsilon", "train-loss", "he-encrypt-s", "he-decrypt-s"})


def _is_encrypted_strategy(strategy: Strategy) -> bool:
    return hasattr(strategy, "context") and hasattr(strategy, "rejections")


def _he_stats(strategy: Strategy, rnd: int) -> dict[str, float]:
    stats = getattr(strategy, "round_stats", {}).get(rnd)
    if stats is None:
        return {}
    return {"sum_seconds": float(stats.sum_seconds)}


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


def _reason(msg: Message, expected: ArrayRecord | None, expect_arrays: bool) -> str | None:
    if msg.has_error():
        return msg.error.reason.strip().splitlines()[-1] if msg.error.reason else "error reply"
    c = msg.content
    metrics = list(c.metric_records.values())
    if len(metrics) != 1 or "num-examples" not in metrics[0]:
        return "reply carries no metrics with num-examples"
    if not expect_arrays:
        return None
    if len(c.array_records) != 1:
        return "reply carries no model update"
    if expected is None:  # encrypted: the strategy checks what it can without the key
        return None
    update = next(iter(c.array_records.values()))
    if list(update.keys()) != list(expected.keys()):
        return "update's layers differ from the global model's (wrong task or version?)"
    for name, arr in update.items():
        ref = expected[name]
        if tuple(arr.shape) != tuple(ref.shape) or arr.dtype != ref.dtype:
            return (
                f"update's layer {name!r} has shape {tuple(arr.shape)}, expected {tuple(ref.shape)}"
            )
        if not np.isfinite(arr.numpy()).all():
            return f"update's layer {name!r} holds NaN or infinite values"
    return None


def screen_replies(
    replies: Iterable[Message],
    names: dict[int, str],
    *,
    expect_arrays: bool,
    expected: ArrayRecord | None = None,
) -> tuple[list[Message], dict[str, str]]:
    """Keep well-formed replies; a malformed one is refused with its reason, never aggregated.

    `expected` is the plaintext global model an update must match layer by layer. Metric
    names must agree across replies (Flower's aggregation requires it): the names most
    replies carry win, so one odd reply cannot spoil the round for everybody.
    """
    rejected: dict[str, str] = {}
    candidates: list[tuple[str, Message]] = []
    for msg in replies:
        who = names.get(msg.metadata.src_node_id, f"node-{msg.metadata.src_node_id}")
        reason = _reason(msg, expected, expect_arrays)
        if reason is None:
            candidates.append((who, msg))
        else:
            rejected[who] = reason
    keys = Counter(
        frozenset(next(iter(m.content.metric_records.values())).keys()) for _, m in candidates
    )
    valid: list[Message] = []
    if keys:
        common = max(keys.items(), key=lambda kv: (kv[1], sorted(kv[0])))[0]
        for who, msg in candidates:
            if frozenset(next(iter(msg.content.metric_records.values())).keys()) == common:
                valid.append(msg)
            else:
                rejected[who] = "reply's metrics differ from the other institutions' (version?)"
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
        per_client: dict[str, dict[str, float]] = {
            names[m.metadata.dst_node_id]: {"bytes_down": record_bytes(m.content)} for m in sent
        }
        replies = exchange(grid, sent, timeout)
        for m in replies:
            who = names.get(m.metadata.src_node_id)
            if who in per_client and not m.has_error():
                per_client[who]["bytes_up"] = record_bytes(m.content)
        encrypted = _is_encrypted_strategy(strategy)
        valid, rejected = screen_replies(
            replies, names, expect_arrays=True, expected=None if encrypted else arrays
        )
        answered = {names.get(m.metadata.src_node_id) for m in replies}
        for who in per_client:
            if who not in answered:
                rejected.setdefault(who, f"no reply within {timeout:.0f} s")
        new_arrays, train_metrics = strategy.aggregate_train(rnd, valid)
        for nid, why in getattr(strategy, "rejections", {}).get(rnd, {}).items():
            rejected[names.get(nid, f"node-{nid}")] = why
        for who, why in rejected.items():
            log.warning("round %d: %s left out: %s", rnd, who, why)
        if new_arrays is None:
            raise FederationError(
                f"round {rnd}: no institution returned a usable update "
                f"({'; '.join(f'{k}: {v}' for k, v in rejected.items())})"
            )
        arrays = new_arrays
        contributors = [m for m in valid if names[m.metadata.src_node_id] not in rejected]
        for m in contributors:
            reported = next(iter(m.content.metric_records.values()))
            per_client[names[m.metadata.src_node_id]].update(
                {k: float(v) for k, v in reported.items() if k in _PER_CLIENT_METRICS}  # type: ignore[arg-type]
            )

        evaluated = _with_node_config(
            strategy.configure_evaluate(rnd, arrays, train_config, grid), names, plan
        )
        for m in evaluated:
            entry = per_client.setdefault(names[m.metadata.dst_node_id], {"bytes_down": 0})
            entry["bytes_down"] = entry.get("bytes_down", 0) + record_bytes(m.content)
        eval_replies = exchange(grid, evaluated, timeout)
        eval_valid, _ = screen_replies(eval_replies, names, expect_arrays=False)
        eval_metrics = strategy.aggregate_evaluate(rnd, eval_valid)

        record = RoundRecord(
            round=rnd,
            metrics={k: float(v) for k, v in (eval_metrics or {}).items()},  # type: ignore[arg-type]
            train_metrics={k: float(v) for k, v in (train_metrics or {}).items()},  # type: ignore[arg-type]
            clients=sorted(names[m.metadata.src_node_id] for m in contributors),
            rejected=rejected,
            bytes_up=int(sum(c.get("bytes_up", 0) for c in per_client.values())),
            bytes_down=int(sum(c.get("bytes_down", 0) for c in per_client.values())),
            seconds=time.perf_counter() - started,
            epsilon={who: c["epsilon"] for who, c in per_client.items() if "epsilon" in c},
            per_client=per_client,
            he=_he_stats(strategy, rnd),
        )
        records.append(record)
        if checkpoints is not None:
            checkpoints.save(run_id, rnd, arrays, {"record": asdict(record)})
        for listener in listeners:
            listener.on_round(record)
    return FederationResult(arrays=arrays, rounds=records, institutions=names)
