"""Run one simulated federation end to end through Flower's Simulation Engine.

Each simulated institution gets its own CSV file and state directory, and its ClientApp reads
them exactly as a deployed institution would; only the transport differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from fl_client.app import build_client_app
from fl_client.node import NodeSettings
from fl_client.run_config import TrainConfig
from fl_client.tasks import get_task
from fl_client.tasks.base import Task
from fl_server.app import ServerSettings, run_federation
from fl_server.federation import FederationPlan, FederationResult, RoundRecord
from privacy.dp import DPConfig
from simulations import baseline, report
from simulations.partition import partition_indices
from simulations.scenarios import get_scenario

log = logging.getLogger("fedkg.sim")


@dataclass
class SimulationConfig:
    scenario: str = "banks"
    task: str | None = None
    clients: int = 5
    rounds: int = 10
    partition: str = "dirichlet"
    alpha: float = 1.0
    seed: int = 42
    out: Path = Path("results")
    local_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    test_fraction: float = 0.2
    scaling: str = "federated"
    he: bool = True
    dp: bool = True
    dp_epsilon: float | None = 8.0
    dp_noise_multiplier: float | None = None
    dp_delta: float = 1e-5
    max_grad_norm: float = 1.0
    # Each simulated institution's budget per data set; default: room for this run.
    dp_budgets: dict[str, float] = field(default_factory=dict)
    checkpoint_dir: Path | None = None
    resume_run: str | None = None
    # Durable home of the simulated federation: HE keys, each institution's ledger and noise
    # secret. Default OUT; a resumed run must use the home of the run it resumes.
    home: Path | None = None
    # After the final round, every institution runs membership-inference attacks on its data.
    audit: bool = False
    # Institutions describe their data in their own words (names, units, codes) on cards in
    # the knowledge graph, whose plan aligns them. False: everyone uses the task's columns.
    kg: bool = True
    ray_address: str | None = None
    cpus: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def dp_config(self) -> DPConfig | None:
        if not self.dp:
            return None
        return DPConfig(
            target_epsilon=None if self.dp_noise_multiplier is not None else self.dp_epsilon,
            noise_multiplier=self.dp_noise_multiplier,
            delta=self.dp_delta,
            max_grad_norm=self.max_grad_norm,
        )

    def resolved_task(self) -> Task:
        scenario = get_scenario(self.scenario)
        name = self.task or scenario.default_task
        if name not in scenario.tasks:
            raise ValueError(
                f"scenario {self.scenario!r} runs {', '.join(scenario.tasks)}, not {name!r}"
            )
        return get_task(name)


@dataclass
class Federation:
    """The simulated institutions: names, files and their raw frames."""

    nodes: list[NodeSettings]
    frames: list[pd.DataFrame]  # in the task's canonical columns, for the baseline
    he_public: Path | None = None
    he_secret: Path | None = None
    plan: FederationPlan | None = None
    graph: Any = None  # the knowledge graph holding the cards and the run's provenance


def build_federation(cfg: SimulationConfig, task: Task) -> Federation:
    scenario = get_scenario(cfg.scenario)
    df = task.reference_data()
    labels = df[task.schema.target.name].to_numpy()
    parts = partition_indices(labels, cfg.clients, cfg.partition, cfg.alpha, cfg.seed)  # type: ignore[arg-type]
    data_dir = cfg.out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    home = (cfg.home or cfg.out).resolve()
    secret: Path | None = None
    public: Path | None = None
    default_budget = max(10.0, 2 * (cfg.dp_epsilon or 0.0))
    if cfg.he:  # the key ceremony, played by the simulation on behalf of the institutions
        from privacy.he.keys import PUBLIC_FILE, SECRET_FILE, generate_keys

        if cfg.resume_run is None:
            made = generate_keys(home / "keys", force=True)
            secret, public = made.secret, made.public
        else:
            secret, public = home / "keys" / SECRET_FILE, home / "keys" / PUBLIC_FILE
            if not secret.exists():
                raise ValueError(
                    f"resuming needs the federation's keys in {home / 'keys'}; pass the same "
                    "--home (or --out) as the run being resumed"
                )
    graph = None
    if cfg.kg:
        from knowledge_graph.store import KnowledgeGraph

        graph = KnowledgeGraph.open(cfg.out / "kg")
    nodes, frames = [], []
    for i, idx in enumerate(parts):
        name = scenario.institution(i)
        frame = df.iloc[idx].reset_index(drop=True)
        path = data_dir / f"{name}.csv"
        if graph is not None:
            from knowledge_graph.simulated import localize

            local, card = localize(frame, task.name, i, name, cfg.seed)
            local.to_csv(path, index=False)
            graph.add_card(card)
            (data_dir / f"{name}.card.yaml").write_text(card.to_yaml())
        else:
            frame.to_csv(path, index=False)
        _seed_noise_secret(home / "state" / name, cfg.seed, name)
        nodes.append(
            NodeSettings(
                name,
                path.resolve(),
                f"{task.name}@{name}",
                home / "state" / name,
                he_context=secret,
                dp_budget=cfg.dp_budgets.get(name, default_budget),
                allow_no_dp=True,  # the researcher chose --no-dp for simulated data
            )
        )
        frames.append(frame)
    plan = None
    if graph is not None:
        from knowledge_graph.planner import federation_plan, plan_task

        task_plan = plan_task(graph, task.name)
        plan = federation_plan(task_plan)  # no member: refuses, naming what each one lacks
        for who, why in sorted(task_plan.excluded.items()):
            log.warning("%s does not join %s: %s", who, task.name, why)
    return Federation(
        nodes, frames, he_public=public, he_secret=secret, plan=plan, graph=graph
    )


def _run_id(cfg: SimulationConfig, task: Task) -> str:
    """Named by what the run computes: the same simulation repeats bit for bit (its DP noise
    is seeded by the run id), and a repeat in the same home is charged once, as it should be,
    because it releases exactly the same updates."""
    what = {
        k: str(v)
        for k, v in asdict(cfg).items()
        if k not in ("out", "home", "checkpoint_dir", "resume_run", "ray_address", "cpus", "audit")
    }
    what["task"] = task.name
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return f"{cfg.scenario}-{digest[:10]}"


def _seed_noise_secret(state_dir: Path, seed: int, name: str) -> None:
    """Simulated institutions derive their DP noise secret from --seed, so a run repeats.

    A deployed institution's secret is random (privacy.dp.noise_seed); here the researcher
    owns every party, and reproducibility is what a simulation is for.
    """
    key = state_dir / "dp-noise.key"
    if not key.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        key.write_bytes(hashlib.sha256(f"fedkg-sim|{seed}|{name}".encode()).digest())
        key.chmod(0o600)


class _Progress:
    def __init__(self, on_round: Callable[[RoundRecord], None] | None) -> None:
        self.records: list[RoundRecord] = []
        self.callback = on_round

    def on_round(self, record: RoundRecord) -> None:
        self.records.append(record)
        if self.callback:
            self.callback(record)


def run(
    cfg: SimulationConfig, on_round: Callable[[RoundRecord], None] | None = None
) -> dict[str, Any]:
    """Run the federation, the centralised baseline, and write metrics.json and plots."""
    task = cfg.resolved_task()
    cfg.out.mkdir(parents=True, exist_ok=True)
    dp = cfg.dp_config()
    federation = build_federation(cfg, task)
    if dp is not None:  # refuse up front what every institution would refuse
        smallest = min(len(f) for f in federation.frames)
        dp.check_dataset(int(smallest * (1 - cfg.test_fraction)))
    train = TrainConfig(
        run_id=cfg.resume_run or _run_id(cfg, task),
        task=task.name,
        total_rounds=cfg.rounds,
        local_epochs=cfg.local_epochs or task.local_epochs,
        batch_size=cfg.batch_size or task.batch_size,
        learning_rate=cfg.learning_rate or task.learning_rate,
        seed=cfg.seed,
        test_fraction=cfg.test_fraction,
    )
    settings = ServerSettings(
        train=train,
        min_clients=cfg.clients,
        connect_timeout=120,
        scaling=cfg.scaling,
        checkpoint_dir=cfg.checkpoint_dir or cfg.out / "checkpoints",
        resume=cfg.resume_run is not None,
        he_public_context=federation.he_public,
        dp=dp,
        plan=federation.plan or FederationPlan(),
    )
    if federation.plan is not None and federation.plan.allowed is not None:
        settings.min_clients = len(federation.plan.allowed)
    progress = _Progress(on_round)
    listeners: list[Any] = [progress]
    if federation.graph is not None:
        from simulations.provenance import ProvenanceListener

        listeners.append(ProvenanceListener(federation.graph, train, federation))
    holder: dict[str, FederationResult] = {}

    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        holder["result"] = run_federation(grid, settings, listeners=listeners)

    nodes = federation.nodes
    client_app = build_client_app(lambda ctx: nodes[int(ctx.node_config["partition-id"])])
    started = time.perf_counter()
    try:
        _run_engine(server_app, client_app, cfg)
    finally:
        if federation.graph is not None:
            federation.graph.close()
    seconds = time.perf_counter() - started
    if "result" not in holder:
        raise RuntimeError("the simulation ended without a result; see the log above")
    result = holder["result"]

    splits = baseline.institution_splits(federation.frames, task, cfg.test_fraction, cfg.seed)
    model = final_model(task, result, federation)
    fed = baseline.evaluate_federated(model, task, splits, result.feature_stats)
    central = baseline.train_centralized(
        task,
        splits,
        epochs=cfg.rounds * train.local_epochs,
        batch_size=train.batch_size,
        learning_rate=train.learning_rate,
        seed=cfg.seed,
    )
    metrics = _metrics(cfg, train, task, federation, result, fed, central, seconds)
    if cfg.audit:
        from simulations.audit import audit_institutions

        last_eps: dict[str, float] = {}
        for r in result.rounds:
            last_eps.update(r.epsilon)
        metrics["audit"] = audit_institutions(
            model,
            task,
            [n.institution for n in federation.nodes],
            splits,
            result.feature_stats,
            epochs=cfg.rounds * train.local_epochs,
            batch_size=train.batch_size,
            learning_rate=train.learning_rate,
            dp=dp,
            accountant_epsilon=last_eps,
            seed=cfg.seed,
            out=cfg.out,
        )
    report.write_json(cfg.out / "metrics.json", metrics)
    torch.save(model.state_dict(), cfg.out / "model.pt")
    report.plot_rounds(metrics, cfg.out)
    report.plot_epsilon(metrics, cfg.out)
    if task.is_binary:
        report.plot_roc(
            {
                f"federated (AUC {metrics['final']['auc']:.3f})": (fed.y, fed.probs[:, 1]),
                f"centralised (AUC {metrics['centralized']['auc']:.3f})": (
                    central.y,
                    central.probs[:, 1],
                ),
            },
            f"{task.name}: ROC of the final model",
            cfg.out,
        )
    return metrics


def final_model(task: Task, result: FederationResult, federation: Federation) -> torch.nn.Module:
    """The final global model, decrypted where the secret key is (an institution's side)."""
    model = task.build_model()
    if federation.he_secret is None:
        model.load_state_dict(result.arrays.to_torch_state_dict())
        return model
    from flwr.app import RecordDict

    from fl_server.strategy import he_records as wire
    from privacy.he.keys import load_secret_context

    meta = wire.read_meta(result.arrays)
    spec = wire.RoundSpec(meta.fingerprint, meta.server_round, meta.cohort, meta.values)
    instruction = RecordDict({"arrays": result.arrays, "he": spec.to_record()})
    template = {k: v.numpy() for k, v in model.state_dict().items()}
    state = wire.unpack_global(load_secret_context(federation.he_secret), instruction, template)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    return model


def _run_engine(server_app: ServerApp, client_app: Any, cfg: SimulationConfig) -> None:
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    init_args: dict[str, Any] = {"include_dashboard": False}
    if cfg.ray_address:
        init_args["address"] = cfg.ray_address
    elif cfg.cpus:
        init_args["num_cpus"] = cfg.cpus
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    flwr_logger.setLevel(logging.ERROR)  # our round driver reports what matters
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=cfg.clients,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": init_args,
            },
        )
    finally:
        flwr_logger.setLevel(level)


def _metrics(
    cfg: SimulationConfig,
    train: TrainConfig,
    task: Task,
    federation: Federation,
    result: FederationResult,
    fed: baseline.Pooled,
    central: baseline.Pooled,
    seconds: float,
) -> dict[str, Any]:
    config = {
        "scenario": cfg.scenario,
        "task": task.name,
        "clients": cfg.clients,
        "rounds": cfg.rounds,
        "partition": cfg.partition,
        "alpha": cfg.alpha,
        "seed": cfg.seed,
        "local_epochs": train.local_epochs,
        "batch_size": train.batch_size,
        "learning_rate": train.learning_rate,
        "test_fraction": cfg.test_fraction,
        "scaling": cfg.scaling,
        "he": cfg.he,
        "kg": cfg.kg,
        "dp": cfg.dp,
        **(
            {
                "dp_epsilon": cfg.dp_epsilon if cfg.dp_noise_multiplier is None else None,
                "dp_noise_multiplier": cfg.dp_noise_multiplier,
                "dp_delta": cfg.dp_delta,
                "max_grad_norm": cfg.max_grad_norm,
            }
            if cfg.dp
            else {}
        ),
        "run_id": train.run_id,
        **cfg.extra,
    }
    return {
        "config": config,
        "institutions": [
            {"name": n.institution, "dataset": n.dataset_id, "records": len(f)}
            for n, f in zip(federation.nodes, federation.frames, strict=True)
        ],
        "rounds": [asdict(r) for r in result.rounds],
        "final": task.metrics(fed.y, fed.probs),
        "centralized": task.metrics(central.y, central.probs),
        "seconds": seconds,
    }
