"""Who this node is and where its data lives: read from the SuperNode's node config.

Deployment passes `--node-config 'institution="bank-a" data-path="/data/loans.csv"'`.
Under `flwr run .` in a local simulation there is only `partition-id`: the node then takes
its share of the task's bundled data, as a simulated institution.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context


@dataclass(frozen=True)
class NodeSettings:
    institution: str
    data_path: Path
    dataset_id: str
    state_dir: Path
    he_context: Path | None = (
        None  # the federation's secret CKKS context, when updates are encrypted
    )
    ledger: Path | None = None  # the privacy ledger; default state_dir/ledger.db
    dp_budget: float = 10.0  # a data set's budget until the institution sets its own
    allow_no_dp: bool = False  # join runs that train without differential privacy

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.state_dir / "ledger.db"


def from_context(context: Context) -> NodeSettings:
    cfg = context.node_config
    if "data-path" in cfg:
        institution = str(cfg.get("institution", f"node-{context.node_id}"))
        data_path = Path(str(cfg["data-path"])).expanduser()
        state_dir = Path(str(cfg.get("state-dir", Path.home() / ".fedkg" / institution)))
        he = str(cfg.get("he-context", ""))
        ledger = str(cfg.get("ledger", ""))
        return NodeSettings(
            institution=institution,
            data_path=data_path,
            dataset_id=str(cfg.get("dataset-id", data_path.stem)),
            state_dir=state_dir.expanduser(),
            he_context=Path(he).expanduser() if he else None,
            ledger=Path(ledger).expanduser() if ledger else None,
            dp_budget=float(cfg.get("dp-budget", 10.0)),
            allow_no_dp=_flag(cfg.get("allow-no-dp", False)),
        )
    if "partition-id" in cfg:
        return _simulated_partition(context)
    raise ValueError(
        "this SuperNode has no data: start it with --node-config 'data-path=\"/path/data.csv\"'"
    )


def _simulated_partition(context: Context) -> NodeSettings:
    from fl_client.tasks import get_task
    from simulations.partition import partition_indices  # only a Flower-way simulation needs it

    rc = context.run_config
    task = get_task(str(rc.get("task", "credit-default")))
    pid, n = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    seed = int(rc.get("seed", 0))
    root = Path(os.environ.get("FEDKG_SIM_DIR", tempfile.gettempdir())) / "fedkg-flwr-run"
    name = f"node-{pid}"
    path = root / f"{task.name}-{n}-{seed}" / f"{name}.csv"
    if not path.exists():
        df = task.reference_data()
        labels = df[task.schema.target.name].to_numpy()
        parts = partition_indices(
            labels,
            n,
            str(rc.get("partition", "iid")),
            float(rc.get("alpha", 1.0)),
            seed,  # type: ignore[arg-type]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        df.iloc[parts[pid]].to_csv(tmp, index=False)
        os.replace(tmp, path)
    # A researcher's own simulation: the run config decides whether it is private.
    return NodeSettings(name, path, f"{task.name}-{name}", root / "state" / name, allow_no_dp=True)


def _flag(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"1", "true", "yes"}
