"""The coordinator's side of a deployment: SuperLink, API, node registration, runs.

`Coordinator(config)` starts Flower's SuperLink (TLS, SuperNode authentication, state
database on disk, no runtime dependency installation) and the coordinator API, registers
institutions' node keys with `flwr supernode register`, and submits runs with `flwr run`.
Each submitted run is remembered in `state/runs/<run-id>.json` so `resume` can resubmit it
to continue from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fl_server.deploy.config import CoordinatorConfig
from fl_server.deploy.environment import executable, process_env
from fl_server.deploy.errors import ConfigError, DeployError
from fl_server.deploy.flwr_cli import FlowerCli, RunInfo, write_connection
from fl_server.deploy.manifest import write_app_dir
from fl_server.deploy.processes import ManagedProcess, ensure_port_free, port_open, wait_until
from fl_server.federation import FederationPlan

# Flower's SuperExec at the SuperLink looks for a new ServerApp to start this often.
SUPEREXEC_POLL_SECONDS = "0.2"


@dataclass
class RunRequest:
    task: str
    rounds: int = 3
    run_id: str = ""
    min_clients: int = 2
    dp: bool = True
    dp_epsilon: float = 3.0
    dp_delta: float = 1e-5
    dp_accountant: str = "prv"
    he_public_context: Path | None = None
    checkpoint_dir: Path | None = None
    seed: int = 0
    local_epochs: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    connect_timeout: float = 300.0
    round_timeout: float = 600.0
    plan: FederationPlan | None = None
    database_url: str = ""

    def overrides(self) -> dict[str, Any]:
        """The `--run-config` values; every key is one the Flower app declares."""
        from fl_server.deploy.plan import plan_to_json

        values: dict[str, Any] = {
            "task": self.task,
            "run-id": self.run_id,
            "num-server-rounds": self.rounds,
            "min-clients": self.min_clients,
            "dp": self.dp,
            "dp-epsilon": self.dp_epsilon,
            "dp-delta": self.dp_delta,
            "dp-accountant": self.dp_accountant,
            "he-public-context": str(self.he_public_context or ""),
            "checkpoint-dir": str(self.checkpoint_dir or ""),
            "seed": self.seed,
            "local-epochs": self.local_epochs,
            "batch-size": self.batch_size,
            "learning-rate": self.learning_rate,
            "connect-timeout": self.connect_timeout,
            "round-timeout": self.round_timeout,
            "plan": plan_to_json(self.plan) if self.plan is not None else "",
            "database-url": self.database_url,
        }
        return values


@dataclass
class SubmittedRun:
    """A fedkg run and the Flower runs that carried it (more than one after a resume)."""

    run_id: str
    overrides: dict[str, Any]
    flower_run_ids: list[int] = field(default_factory=list)
    submitted_at: list[str] = field(default_factory=list)

    @property
    def flower_run_id(self) -> int:
        return self.flower_run_ids[-1]


def new_run_id(task: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{task}-{stamp}-{secrets.token_hex(2)}"


def shareable_database_url(url: str) -> str:
    """The URL if it can travel in the run config (every institution sees it), else ""."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return "" if make_url(url).password else url
    except ArgumentError:
        raise ConfigError(f"cannot parse database URL {url.split('@')[-1]!r}") from None


class Coordinator:
    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.superlink: ManagedProcess | None = None
        self.api: ManagedProcess | None = None

    @property
    def flower(self) -> FlowerCli:
        return FlowerCli(self.config.flwr_home)

    # --- processes -----------------------------------------------------------------------
    def _check_tls_files(self) -> None:
        sl = self.config.superlink
        for what, path in (
            ("certfile", sl.certfile),
            ("keyfile", sl.keyfile),
            ("ca-certfile", sl.ca_certfile),
        ):
            if not path.exists():
                raise DeployError(
                    f"[superlink] {what} {path} does not exist; run `fl-server certs` for a "
                    "development CA, or point the configuration at your own certificates"
                )

    def superlink_argv(self) -> list[str]:
        sl = self.config.superlink
        return [
            executable("flower-superlink"),
            "--host", sl.host,
            "--port", str(sl.port),
            "--ssl-certfile", str(sl.certfile),
            "--ssl-keyfile", str(sl.keyfile),
            "--ssl-ca-certfile", str(sl.ca_certfile),
            "--database", str(self.config.superlink_database),
            "--disable-runtime-dependency-installation",
            "--enable-supernode-auth",
        ]  # fmt: skip

    def start_superlink(self, timeout: float = 60.0) -> ManagedProcess:
        cfg = self.config
        self._check_tls_files()
        ensure_port_free(cfg.superlink.host, cfg.superlink.port, "SuperLink")
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = process_env(
            cfg.flwr_home,
            {
                "FEDKG_DATABASE_URL": cfg.database_url,
                "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": SUPEREXEC_POLL_SECONDS,
            },
        )
        proc = ManagedProcess(
            "SuperLink", self.superlink_argv(), cfg.state_dir / "logs" / "superlink.log", env,
            cwd=cfg.state_dir,
        )  # fmt: skip
        self.superlink = proc
        host, port = cfg.superlink.connect_address.rsplit(":", 1)
        wait_until(
            lambda: port_open(host.strip("[]"), int(port)), timeout, "the SuperLink listens", proc
        )
        write_connection(cfg.flwr_home, cfg.superlink.connect_address, cfg.superlink.ca_certfile)
        write_app_dir(cfg.app_dir)
        (cfg.state_dir / "superlink.pid").write_text(f"{proc.pid}\n")
        return proc

    def start_api(self, timeout: float = 60.0) -> ManagedProcess | None:
        api = self.config.api
        if not api.enabled:
            return None
        ensure_port_free(api.host, api.port, "coordinator API")
        argv = [
            executable("fl-server"), "api",
            "--host", api.host, "--port", str(api.port),
            "--database-url", self.config.database_url,
        ]  # fmt: skip
        if api.kg_dir is not None:
            argv += ["--kg-dir", str(api.kg_dir)]
        proc = ManagedProcess(
            "coordinator API", argv, self.config.state_dir / "logs" / "api.log", process_env()
        )
        self.api = proc
        wait_until(lambda: port_open(api.host, api.port), timeout, "the API listens", proc)
        return proc

    def stop(self) -> None:
        for proc in (self.api, self.superlink):
            if proc is not None:
                proc.stop()
        (self.config.state_dir / "superlink.pid").unlink(missing_ok=True)

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- institutions --------------------------------------------------------------------
    def register_node(self, name: str, public_key: Path) -> int:
        """Let the holder of `public_key`'s private half connect as institution `name`."""
        from fl_server.deploy.certs import read_public_key

        read_public_key(public_key)
        return self.flower.register_node(Path(public_key).expanduser(), name)

    # --- runs ----------------------------------------------------------------------------
    def _record_path(self, run_id: str) -> Path:
        from fl_server.db.runs import check_run_id

        try:
            check_run_id(run_id)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.config.runs_dir / f"{run_id}.json"

    def _save(self, run: SubmittedRun) -> None:
        path = self._record_path(run.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(run), indent=2))
        os.replace(tmp, path)

    def load_run(self, run_id: str) -> SubmittedRun:
        path = self._record_path(run_id)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise DeployError(
                f"this coordinator submitted no run {run_id!r}; list {self.config.runs_dir}"
            ) from None
        return SubmittedRun(**doc)

    def submit(self, request: RunRequest) -> SubmittedRun:
        request.run_id = request.run_id or new_run_id(request.task)
        if self._record_path(request.run_id).exists():
            raise DeployError(
                f"run {request.run_id!r} was submitted before; continue it with --resume "
                f"{request.run_id} or pick another run id"
            )
        if request.checkpoint_dir is None:
            request.checkpoint_dir = self.config.run.checkpoint_dir
        if not request.database_url:
            request.database_url = shareable_database_url(self.config.database_url)
        write_app_dir(self.config.app_dir)
        overrides = request.overrides()
        run = SubmittedRun(request.run_id, overrides)
        self._submit(run)
        return run

    def _submit(self, run: SubmittedRun) -> None:
        flower_id = self.flower.submit(self.config.app_dir, run.overrides)
        run.flower_run_ids.append(flower_id)
        run.submitted_at.append(datetime.now(UTC).isoformat(timespec="seconds"))
        self._save(run)

    def resume(self, run_id: str) -> SubmittedRun:
        """Submit the run again; its ServerApp continues after the last checkpointed round."""
        run = self.load_run(run_id)
        if not run.overrides.get("checkpoint-dir"):
            raise DeployError(f"run {run_id} kept no checkpoints, so it cannot be resumed")
        for flower_id in run.flower_run_ids:
            try:
                info = self.flower.run_info(flower_id)
            except DeployError:
                continue
            if not info.finished:
                try:  # a ServerApp still alive would race the new one
                    self.flower.stop(flower_id)
                except DeployError:
                    info = self.flower.run_info(flower_id)  # it ended meanwhile
            if info.succeeded and flower_id == run.flower_run_id:
                raise DeployError(f"run {run_id} already finished; nothing to resume")
        run.overrides = {**run.overrides, "resume": True}
        self._submit(run)
        return run

    def wait(self, flower_run_id: int, timeout: float, poll: float = 1.0) -> RunInfo:
        deadline = time.monotonic() + timeout
        while True:
            info = self.flower.run_info(flower_run_id)
            if info.finished:
                return info
            if time.monotonic() > deadline:
                raise DeployError(
                    f"Flower run {flower_run_id} still {info.status} after {timeout:.0f} s"
                )
            time.sleep(poll)
