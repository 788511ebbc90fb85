"""The Flower ClientApp an institution runs: receive the global model, train locally, reply.

Each step is a function of its own so that differential privacy (the training step) and
homomorphic encryption (receiving and packing weights) slot in without touching the rest.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fl_client.data import (
    DataError,
    FeatureMapping,
    FeatureStats,
    LocalData,
    load_table,
    prepare,
    split,
)
from fl_client.node import NodeSettings, from_context
from fl_client.private_round import train_round
from fl_client.run_config import TrainConfig
from fl_client.tasks import get_task
from fl_client.training import evaluate, pick_device, seed_everything
from privacy.dp import BudgetExceeded, DPConfig, DPError

if TYPE_CHECKING:
    from privacy.he.context import SecretContext

NodeResolver = Callable[[Context], NodeSettings]

# The institution's own decisions: answered as a refusal the coordinator records, not a crash.
REFUSED = 600
_REFUSALS = (BudgetExceeded, DPError, DataError)

_torch_threads = threading.Lock()


@lru_cache(maxsize=8)
def _frame(path: Path, mtime: float, task_name: str, mapping_json: str) -> pd.DataFrame:
    task = get_task(task_name)
    mapping = FeatureMapping.from_json(mapping_json) if mapping_json else None
    return load_table(path, task.schema, mapping)


def local_frame(node: NodeSettings, cfg: TrainConfig, mapping_json: str) -> pd.DataFrame:
    """The node's own table, aligned to the task; cached while the file is unchanged."""
    mtime = node.data_path.stat().st_mtime if node.data_path.exists() else 0.0
    return _frame(node.data_path, mtime, cfg.task, mapping_json)


def local_data(node: NodeSettings, cfg: TrainConfig, msg: Message) -> LocalData:
    """Split and encode, on the federation's feature statistics when the run shares them."""
    df = local_frame(node, cfg, _mapping(msg))
    stats_json = str(msg.content["config"].get("feature-stats", ""))
    stats = FeatureStats.from_json(stats_json) if stats_json else None
    return prepare(df, get_task(cfg.task).schema, cfg.test_fraction, cfg.seed, stats)


def local_stats(node: NodeSettings, cfg: TrainConfig, msg: Message) -> np.ndarray:
    """This node's contribution to the federation-wide feature statistics (train split only)."""
    schema = get_task(cfg.task).schema
    train, _ = split(local_frame(node, cfg, _mapping(msg)), schema, cfg.test_fraction, cfg.seed)
    st = FeatureStats.of(train, schema)
    return np.array([st.count, *st.total, *st.total_sq], dtype=np.float64)


def _mapping(msg: Message) -> str:
    node_cfg = msg.content.config_records.get("node")
    return str(node_cfg.get("mapping", "")) if node_cfg is not None else ""


def _secret_context(msg: Message, node: NodeSettings) -> SecretContext | None:
    """The federation's secret context when this round's model travels encrypted."""
    if "he" not in msg.content.config_records:
        return None
    if node.he_context is None:
        raise ValueError(
            "the federation encrypts model updates but this node has no secret HE context; "
            'start it with he-context="/path/secret.ctx" in its node config'
        )
    from privacy.he.keys import load_secret_context

    return load_secret_context(node.he_context)


def _global_model(
    msg: Message, cfg: TrainConfig, ctx: SecretContext | None, timings: dict[str, float]
) -> torch.nn.Module:
    model = get_task(cfg.task).build_model()
    if ctx is None:
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        return model
    from fl_server.strategy.he_records import unpack_global

    started = time.perf_counter()
    template = {k: v.numpy() for k, v in model.state_dict().items()}
    state = unpack_global(ctx, msg.content, template)
    timings["he-decrypt-s"] = time.perf_counter() - started
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model


def _reply(
    msg: Message,
    model: torch.nn.Module,
    ctx: SecretContext | None,
    num_examples: int,
    metrics: dict[str, float],
) -> Message:
    if ctx is None:
        content = RecordDict(
            {
                "arrays": ArrayRecord(model.cpu().state_dict()),
                "metrics": MetricRecord({"num-examples": num_examples, **metrics}),
            }
        )
        return Message(content, reply_to=msg)
    from fl_server.strategy.he_records import pack_update

    started = time.perf_counter()
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    metrics = {**metrics, "he-encrypt-s": 0.0}
    content = pack_update(ctx, msg.content, state, num_examples, metrics)
    content["metrics"]["he-encrypt-s"] = time.perf_counter() - started
    return Message(content, reply_to=msg)


def _single_thread() -> None:
    # Simulated institutions share the machine's cores: one thread each trains fastest.
    with _torch_threads:
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)


def _train(msg: Message, node: NodeSettings) -> Message:
    config = msg.content["config"]
    cfg = TrainConfig.from_record(config)
    server_round = int(config.get("server-round", 0))
    task = get_task(cfg.task)
    dp = DPConfig.from_record(config)
    data = local_data(node, cfg, msg)
    ctx = _secret_context(msg, node)
    timings: dict[str, float] = {}
    model = _global_model(msg, cfg, ctx, timings)
    seed = cfg.seed * 10_007 + server_round * 101 + zlib.crc32(node.institution.encode()) % 9973
    seed_everything(seed)
    outcome = train_round(node, cfg, dp, server_round, task, data, model, pick_device(), seed)
    metrics = {
        "train-loss": outcome.stats.loss,
        "steps": float(outcome.stats.steps),
        **outcome.metrics,
        **timings,
    }
    return _reply(msg, outcome.model, ctx, data.num_train, metrics)


def build_client_app(resolve: NodeResolver = from_context) -> ClientApp:
    app = ClientApp()

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        node = resolve(context)
        what = str(msg.content["query"]["what"])
        if what == "identity":
            reply = ConfigRecord({"institution": node.institution, "dataset-id": node.dataset_id})
            return Message(RecordDict({"identity": reply}), reply_to=msg)
        if what == "feature-stats":
            cfg = TrainConfig.from_record(msg.content["config"])
            stats = ArrayRecord([local_stats(node, cfg, msg)])
            return Message(RecordDict({"stats": stats}), reply_to=msg)
        raise ValueError(f"unknown query {what!r}; client and server versions differ")

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        _single_thread()
        node = resolve(context)
        try:
            return _train(msg, node)
        except _REFUSALS as exc:
            return Message(Error(code=REFUSED, reason=f"{node.institution}: {exc}"), reply_to=msg)

    @app.evaluate()
    def evaluate_global(msg: Message, context: Context) -> Message:
        _single_thread()
        node = resolve(context)
        cfg = TrainConfig.from_record(msg.content["config"])
        task = get_task(cfg.task)
        data = local_data(node, cfg, msg)
        ctx = _secret_context(msg, node)
        model = _global_model(msg, cfg, ctx, {})
        scores = evaluate(model, task, data.x_test, data.y_test, pick_device())
        # Only keys every node can report: one test split may hold a single class (no AUC).
        values = {"loss": scores["loss"], "accuracy": scores["accuracy"]}
        if ctx is None:
            metrics = MetricRecord({"num-examples": data.num_test, **values})
        else:  # the coordinator learns a coarse weight, not the size of the test split
            from fl_server.strategy.he_records import metric_record

            metrics = metric_record(values, data.num_test)
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    return app


app = build_client_app()
