"""The Flower ServerApp: identify the institutions, plan, run the rounds, report.

`run_federation` is what both the simulation runner and the deployed coordinator call;
the module-level `app` serves `flwr run .` with settings from `[tool.flwr.app.config]`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fl_client.data import FeatureStats
from fl_client.run_config import TrainConfig
from fl_client.tasks import get_task
from fl_server.checkpoint import CheckpointStore
from fl_server.federation import (
    FederationError,
    FederationPlan,
    FederationResult,
    RoundListener,
    RoundRecord,
    collect_feature_stats,
    identify_nodes,
    run_rounds,
    wait_for_nodes,
)
from privacy.dp.config import DPConfig

log = logging.getLogger("fedkg.server")


@dataclass
class ServerSettings:
    train: TrainConfig
    min_clients: int = 2
    connect_timeout: float = 300.0
    round_timeout: float = 3600.0
    plan: FederationPlan = field(default_factory=FederationPlan)
    # "federated": standardise on federation-wide totals; "local": each institution's own.
    scaling: str = "federated"
    checkpoint_dir: Path | None = None
    resume: bool = False
    # The federation's public CKKS context: updates are summed encrypted. None: plaintext FedAvg.
    he_public_context: Path | None = None
    # DP-SGD every institution applies (private by default). None: a non-private run, which
    # institutions refuse unless they allow it.
    dp: DPConfig | None = field(default_factory=DPConfig)


def initial_model(task_name: str, seed: int) -> ArrayRecord:
    """A random initialisation every party can reproduce from the run's seed."""
    torch.manual_seed(seed)
    return ArrayRecord(get_task(task_name).build_model().state_dict())


def make_strategy(settings: ServerSettings, connected: int) -> FedAvg:
    """Flower's FedAvg, or its encrypted twin when the run has a public HE context."""
    sampling = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": min(settings.min_clients, connected),
        "min_evaluate_nodes": min(settings.min_clients, connected),
        "min_available_nodes": min(settings.min_clients, connected),
    }
    if settings.he_public_context is None:
        return FedAvg(**sampling)
    from fl_server.strategy.encrypted_fedavg import EncryptedFedAvg

    return EncryptedFedAvg(settings.he_public_context, **sampling)


def run_federation(
    grid: Grid, settings: ServerSettings, listeners: Sequence[RoundListener] = ()
) -> FederationResult:
    nodes = wait_for_nodes(grid, settings.min_clients, settings.connect_timeout)
    names = identify_nodes(grid, nodes, timeout=settings.round_timeout)
    strategy = make_strategy(settings, len(names))
    cfg = settings.train
    config = cfg.to_record(**(settings.dp.to_record() if settings.dp else {"dp": False}))
    store = CheckpointStore(settings.checkpoint_dir) if settings.checkpoint_dir else None
    resumed = store.latest(cfg.run_id) if store and settings.resume else None
    if settings.resume and resumed is None:
        raise FederationError(f"run {cfg.run_id} has no checkpoint to resume from")
    stats = None
    if resumed is not None and resumed.state.get("feature-stats"):
        stats = FeatureStats.from_json(resumed.state["feature-stats"])
    elif settings.scaling == "federated":
        stats = collect_feature_stats(grid, names, settings.plan, config, settings.round_timeout)
    if stats is not None:
        config["feature-stats"] = stats.to_json()
    if resumed is not None:
        # The last finished round may not have reached every listener before the crash.
        done = RoundRecord(**resumed.state["record"])
        for listener in listeners:
            listener.on_round(done)
    result = run_rounds(
        grid,
        strategy,
        resumed.arrays if resumed else initial_model(cfg.task, cfg.seed),
        config,
        num_rounds=cfg.total_rounds,
        names=names,
        plan=settings.plan,
        timeout=settings.round_timeout,
        start_round=resumed.round + 1 if resumed else 1,
        listeners=listeners,
        checkpoints=_StatsCheckpoints(store, stats) if store else None,
        run_id=cfg.run_id,
    )
    result.feature_stats = stats
    if resumed is not None and not result.rounds:
        result.arrays = resumed.arrays
    return result


class _StatsCheckpoints(CheckpointStore):
    """Checkpoints that also carry the run's feature statistics, needed to resume."""

    def __init__(self, store: CheckpointStore, stats: FeatureStats | None) -> None:
        super().__init__(store.directory, store.keep)
        self._stats = stats.to_json() if stats else ""

    def save(self, run_id: str, rnd: int, arrays: ArrayRecord, state: dict[str, Any]) -> Path:
        return super().save(run_id, rnd, arrays, {**state, "feature-stats": self._stats})


def settings_from_run_config(context: Context) -> ServerSettings:
    rc = context.run_config
    task = get_task(str(rc.get("task", "credit-default")))
    train = TrainConfig(
        run_id=str(rc.get("run-id") or uuid.uuid4().hex[:12]),
        task=task.name,
        total_rounds=int(rc.get("num-server-rounds", 3)),
        local_epochs=int(_or_task_default(rc, "local-epochs", task.local_epochs)),
        batch_size=int(_or_task_default(rc, "batch-size", task.batch_size)),
        learning_rate=float(_or_task_default(rc, "learning-rate", task.learning_rate)),
        seed=int(rc.get("seed", 0)),
    )
    checkpoint_dir = str(rc.get("checkpoint-dir", ""))
    he_public = str(rc.get("he-public-context", ""))
    return ServerSettings(
        train=train,
        min_clients=int(rc.get("min-clients", 2)),
        connect_timeout=float(rc.get("connect-timeout", 300.0)),
        round_timeout=float(rc.get("round-timeout", 3600.0)),
        plan=_plan_from_run_config(rc),
        scaling=str(rc.get("scaling", "federated")),
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        resume=bool(rc.get("resume", False)),
        he_public_context=Path(he_public) if he_public else None,
        dp=dp_from_run_config(rc),
    )


def _or_task_default(rc: Any, key: str, default: float) -> Any:
    """A deployed run's manifest declares every key; 0 there means "the task's default"."""
    value = rc.get(key)
    if value is None or (not isinstance(value, bool) and float(value) <= 0):
        return default
    return value


def _plan_from_run_config(rc: Any) -> FederationPlan:
    """The knowledge graph's plan (`plan`: JSON); none lets every connected node join."""
    text = str(rc.get("plan", "") or "")
    if not text:
        return FederationPlan()
    from fl_server.deploy.plan import plan_from_json

    return plan_from_json(text)


def dp_from_run_config(rc: Any) -> DPConfig | None:
    if str(rc.get("dp", True)).lower() in {"false", "0", "no"}:
        return None
    noise = rc.get("dp-noise-multiplier")
    return DPConfig(
        target_epsilon=None if noise is not None else float(rc.get("dp-epsilon", 3.0)),
        noise_multiplier=float(noise) if noise is not None else None,
        delta=float(rc.get("dp-delta", 1e-5)),
        max_grad_norm=float(rc.get("max-grad-norm", 1.0)),
        accountant=str(rc.get("dp-accountant", "prv")),
    )


app = ServerApp()

# Run-config keys that must not reach the run's stored record.
_PRIVATE_KEYS = frozenset({"database-url"})


def _database_url(rc: Any) -> str | None:
    """`database-url` from the run config, else $FEDKG_DATABASE_URL, else no recording.

    Every institution receives the run config: a URL with a password belongs in the
    SuperLink's environment (fl-server start puts it there), not in the run config.
    """
    import os

    from fl_server.db.engine import DATABASE_URL_ENV

    return str(rc.get("database-url", "") or "") or os.environ.get(DATABASE_URL_ENV) or None


def run_recorder(context: Context, settings: ServerSettings) -> Any:
    """A RunRecorder writing this run's rounds to the coordinator's database, if it has one."""
    url = _database_url(context.run_config)
    if url is None:
        return None
    from fl_server.db.recorder import RunRecorder

    config = {k: v for k, v in context.run_config.items() if k not in _PRIVATE_KEYS}
    config["run-id"] = settings.train.run_id
    return RunRecorder(url, settings.train.run_id, settings.train.task, config)


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = settings_from_run_config(context)
    recorder = run_recorder(context, settings)
    listeners: list[RoundListener] = []
    if recorder is not None:
        recorder.start()
        listeners.append(recorder)
    try:
        result = run_federation(grid, settings, listeners)
    except BaseException as exc:
        if recorder is not None:
            status = "failed" if isinstance(exc, Exception) else "cancelled"
            try:
                recorder.finish(status, {"error": str(exc)[:500]})
            except Exception as db_exc:  # the run's own error is the one to report
                log.error("could not record the run as %s: %s", status, db_exc)
            recorder.close()
        raise
    if recorder is not None:
        final = result.rounds[-1].metrics if result.rounds else {}
        recorder.finish("finished", dict(final))
        recorder.close()
    for r in result.rounds:
        log.warning(
            "round %d: %s  clients=%d",
            r.round,
            "  ".join(f"{k}={v:.4f}" for k, v in sorted(r.metrics.items())),
            len(r.clients),
        )
