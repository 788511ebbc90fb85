"""EncryptedFedAvg with real Flower messages: the sum, and every reason to leave a reply out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from fl_server.strategy import EncryptedFedAvg
from fl_server.strategy import he_records as wire
from privacy.he import (
    HEFingerprintError,
    HEKeyError,
    PublicContext,
    SecretContext,
    generate_keys,
    load_public_context,
    load_secret_context,
)

NODES = [11, 22, 33]
WEIGHTS = {11: 120, 22: 4_000, 33: 75_000}


class StaticGrid(Grid):
    """Flower's Grid with a fixed set of connected nodes; sending is the test's job."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def set_run(self, run):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")

    @property
    def run(self):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")

    def create_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")

    def push_messages(self, messages):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")

    def pull_messages(self, message_ids):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")

    def send_and_receive(self, messages, *, timeout=None):  # type: ignore[no-untyped-def]
        raise AssertionError("a strategy only builds messages; sending them is the test's job")


@pytest.fixture(autouse=True, scope="module")
def _serverapp_identity() -> Iterator[None]:
    """What Flower's ServerApp runtime sets before a strategy creates messages."""
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 7, SUPERLINK_NODE_ID
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SecretContext, PublicContext, Path]:
    files = generate_keys(tmp_path_factory.mktemp("federation"))
    return load_secret_context(files.secret), load_public_context(files.public), files.public


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> SecretContext:
    return load_secret_context(generate_keys(tmp_path_factory.mktemp("foreign")).secret)


def initial_state() -> dict[str, np.ndarray]:
    return {"fc.weight": np.zeros((40, 30), np.float32), "fc.bias": np.zeros(40, np.float32)}


def initial_arrays() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in initial_state().items()})


def local_state(node: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(node)
    return {k: rng.uniform(-5, 5, v.shape).astype(np.float32) for k, v in initial_state().items()}


def strategy(public: PublicContext | Path) -> EncryptedFedAvg:
    return EncryptedFedAvg(public, min_train_nodes=2, min_available_nodes=2, min_evaluate_nodes=2)


def first_round(keys, *, rnd: int = 1) -> tuple[EncryptedFedAvg, dict[int, Message]]:
    strat = strategy(keys[1])
    arrays = initial_arrays()
    sent = strat.configure_train(rnd, arrays, ConfigRecord({"lr": 0.1}), StaticGrid(NODES))
    return strat, {m.metadata.dst_node_id: m for m in sent}


def reply(ctx: SecretContext, instruction: Message, *, tamper: Callable | None = None) -> Message:
    node = instruction.metadata.dst_node_id
    content = wire.pack_update(
        ctx, instruction.content, local_state(node), WEIGHTS.get(node, 10), {"train-loss": 0.5}
    )
    if tamper is not None:
        tamper(content)
    return Message(content, reply_to=instruction)


def expected_average(nodes: Iterable[int]) -> np.ndarray:
    nodes = list(nodes)
    w = np.array([WEIGHTS[n] for n in nodes], dtype=np.float64)
    flat = np.stack(
        [np.concatenate([v.ravel() for v in local_state(n).values()]) for n in nodes]
    ).astype(np.float64)
    return (w[:, None] * flat).sum(axis=0) / w.sum()


def decrypt(sk: SecretContext, strat: EncryptedFedAvg, arrays: ArrayRecord, rnd: int) -> np.ndarray:
    """What an institution sees of the next round's global model."""
    nxt = strat.configure_train(rnd + 1, arrays, ConfigRecord(), StaticGrid(NODES))
    state = wire.unpack_global(sk, next(iter(nxt)).content, initial_state())
    return np.concatenate([v.ravel() for v in state.values()]).astype(np.float64)


def test_aggregate_is_the_weighted_average_of_all_replies(keys) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    assert all(wire.HE_KEY in m.content for m in sent.values())
    arrays, metrics = strat.aggregate_train(1, [reply(sk, m) for m in sent.values()])
    assert arrays is not None and wire.is_encrypted(arrays)
    np.testing.assert_allclose(decrypt(sk, strat, arrays, 1), expected_average(NODES), atol=1e-5)
    assert metrics is not None and metrics["train-loss"] == pytest.approx(0.5)
    assert strat.rejections[1] == {}
    stats = strat.round_stats[1]
    assert stats.accepted == 3 and stats.rejected == 0
    assert stats.bytes_received > 0 and stats.bytes_sent > 0 and stats.sum_seconds > 0


def test_replies_report_only_a_coarse_size(keys) -> None:
    sk, _, _ = keys
    _, sent = first_round(keys)
    content = reply(sk, sent[22]).content
    assert content["metrics"]["num-examples"] == 4096  # 4,000 rounded to a power of two
    assert "4000" not in str(dict(content["he"]))


def test_second_round_sends_the_encrypted_aggregate(keys) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    arrays, _ = strat.aggregate_train(1, [reply(sk, m) for m in sent.values()])
    assert arrays is not None
    for configure in (strat.configure_train, strat.configure_evaluate):
        msgs = list(configure(2, arrays, ConfigRecord(), StaticGrid(NODES)))
        assert len(msgs) == 3
        for m in msgs:
            assert wire.is_encrypted(m.content["arrays"])
            assert m.content["he"]["server-round"] == 2
    msgs = {
        m.metadata.dst_node_id: m
        for m in strat.configure_train(2, arrays, ConfigRecord(), StaticGrid(NODES))
    }
    arrays2, _ = strat.aggregate_train(2, [reply(sk, m) for m in msgs.values()])
    assert arrays2 is not None
    np.testing.assert_allclose(decrypt(sk, strat, arrays2, 2), expected_average(NODES), atol=1e-5)


def set_he(field: str, value: object) -> Callable[[RecordDict], None]:
    def tamper(content: RecordDict) -> None:
        content["he"][field] = value

    return tamper


def drop_last_chunk(content: RecordDict) -> None:
    rows = content["arrays"]["ciphertexts"].numpy()
    content["arrays"]["ciphertexts"] = Array(np.ascontiguousarray(rows[:-1]))


def shorten_chunks(content: RecordDict) -> None:
    rows = content["arrays"]["ciphertexts"].numpy()
    content["arrays"]["ciphertexts"] = Array(np.ascontiguousarray(rows[:, :-1]))


def garble_chunk(content: RecordDict) -> None:
    rows = content["arrays"]["ciphertexts"].numpy().copy()
    rows[0, :] = 0xFF  # residues above the prime: SEAL refuses to load them
    content["arrays"]["ciphertexts"] = Array(rows)


def drop_metrics(content: RecordDict) -> None:
    content["metrics"] = MetricRecord({"train-loss": 1.0})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (set_he("server-round", 2), "wrong round"),
        (set_he("cohort", 7), "wrong cohort"),
        (set_he("values", 5), "wrong model size"),
        (set_he("format", "fedkg-ckks/0"), "format"),
        (drop_last_chunk, "chunks, "),
        (shorten_chunks, "bytes, "),
        (garble_chunk, "does not deserialise"),
        (drop_metrics, "num-examples"),
    ],
)
def test_bad_reply_is_rejected_and_the_round_goes_on(keys, tamper, reason: str) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    replies = [reply(sk, sent[n], tamper=tamper if n == 22 else None) for n in NODES]
    arrays, _ = strat.aggregate_train(1, replies)
    assert set(strat.rejections[1]) == {22}
    assert reason in strat.rejections[1][22]
    assert arrays is not None
    np.testing.assert_allclose(decrypt(sk, strat, arrays, 1), expected_average([11, 33]), atol=1e-5)
    assert strat.round_stats[1].accepted == 2 and strat.round_stats[1].rejected == 1


def test_reply_under_a_foreign_key_is_rejected(keys, foreign: SecretContext) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    forged = RecordDict(dict(sent[33].content.items()))
    forged["he"] = ConfigRecord({**dict(forged["he"].items()), "fingerprint": foreign.fingerprint})
    foreign_reply = Message(
        wire.pack_update(foreign, forged, local_state(33), WEIGHTS[33], {"train-loss": 0.5}),
        reply_to=sent[33],
    )
    arrays, _ = strat.aggregate_train(1, [reply(sk, sent[11]), reply(sk, sent[22]), foreign_reply])
    assert "wrong HE context" in strat.rejections[1][33]
    assert arrays is not None
    np.testing.assert_allclose(decrypt(sk, strat, arrays, 1), expected_average([11, 22]), atol=1e-5)


def test_error_replies_duplicates_and_strangers_are_left_out(keys) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    failed = Message(Error(code=0, reason="out of budget"), reply_to=sent[11])
    # An instruction from another coordinator run, to a node this round did not ask.
    elsewhere = strategy(keys[1]).configure_train(
        1, initial_arrays(), ConfigRecord(), StaticGrid([44, 55])
    )
    unknown = reply(sk, next(m for m in elsewhere if m.metadata.dst_node_id == 44))
    good = reply(sk, sent[22])
    arrays, _ = strat.aggregate_train(
        1, [failed, good, reply(sk, sent[22]), unknown, reply(sk, sent[33])]
    )
    rejected = strat.rejections[1]
    assert "out of budget" in rejected[11]
    assert "second reply" in rejected[22]
    assert "not asked" in rejected[44]
    assert arrays is not None
    np.testing.assert_allclose(decrypt(sk, strat, arrays, 1), expected_average([22, 33]), atol=1e-5)


def test_no_valid_reply_gives_no_aggregate(keys) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    replies = [reply(sk, m, tamper=set_he("server-round", 9)) for m in sent.values()]
    assert strat.aggregate_train(1, replies) == (None, None)
    assert set(strat.rejections[1]) == set(NODES)


def test_strategy_refuses_a_secret_context(keys, tmp_path: Path) -> None:
    sk, _, _ = keys
    with pytest.raises(HEKeyError, match="secret key"):
        strategy(sk)  # type: ignore[arg-type]
    files = generate_keys(tmp_path)
    with pytest.raises(HEKeyError, match="secret key"):
        strategy(files.secret)
    assert strategy(files.public).context.fingerprint == files.fingerprint


def test_institution_refuses_instructions_of_another_federation(keys, foreign) -> None:
    _, sent = first_round(keys)
    with pytest.raises(HEFingerprintError):
        wire.pack_update(foreign, sent[11].content, local_state(11), 100, {})
    with pytest.raises(HEFingerprintError):
        wire.unpack_global(foreign, sent[11].content, initial_state())


def test_coordinator_refuses_a_foreign_global_model(keys, foreign) -> None:
    sk, _, _ = keys
    strat, sent = first_round(keys)
    arrays, _ = strat.aggregate_train(1, [reply(sk, m) for m in sent.values()])
    assert arrays is not None
    other = strategy(foreign.public())
    with pytest.raises(HEFingerprintError):
        other.configure_train(2, arrays, ConfigRecord(), StaticGrid(NODES))
