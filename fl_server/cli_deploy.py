"""`fl-server certs | start | register-node | run`: the coordinator's deployment commands.

Mount into `fl-server` with `register(app)`; `python -m fl_server.cli_deploy` runs them alone.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fl_server.deploy.config import (
    DEFAULT_FILE,
    CoordinatorConfig,
    load_config,
    write_default_config,
)
from fl_server.deploy.errors import DeployError

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="the coordinator's configuration file (TOML)"),
]


def _guard(fn: Callable[[], T]) -> T:
    """Deployment errors as one line on stderr, exit code 2, no traceback."""
    try:
        return fn()
    except (DeployError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _config(path: Path) -> CoordinatorConfig:
    return _guard(lambda: load_config(path))


def certs_command(
    config: ConfigOption = Path(DEFAULT_FILE),
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="host name or IP institutions use to reach the SuperLink (repeatable; "
            "default localhost, 127.0.0.1, ::1)",
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = 365,
    force: Annotated[bool, typer.Option(help="replace existing certificates")] = False,
) -> None:
    """Development TLS: a CA and a SuperLink certificate (dev only; production brings its own).

    Writes the configuration file with documented defaults if there is none yet, then the
    files it names: ca.crt (give it to every institution), server.pem and the two keys.
    """
    from fl_server.deploy.certs import DEFAULT_NAMES, create_dev_certificates

    created = not config.exists()
    _guard(lambda: write_default_config(config))
    cfg = _config(config)
    if cfg.superlink.certfile.parent != cfg.superlink.ca_certfile.parent:
        err.print("[red]error:[/] certfile and ca-certfile must share a directory for `certs`")
        raise typer.Exit(2)
    files = _guard(
        lambda: create_dev_certificates(
            cfg.superlink.ca_certfile.parent, name or DEFAULT_NAMES, days=days, force=force
        )
    )
    if created:
        console.print(f"wrote {config} with documented defaults; review it")
    console.print(f"CA certificate (send to institutions): {files.ca_cert}")
    console.print(f"SuperLink certificate: {files.server_cert}  (key {files.server_key})")
    console.print("[yellow]development certificates: use your own PKI in production[/]")


def start_command(
    config: ConfigOption = Path(DEFAULT_FILE),
    no_api: Annotated[bool, typer.Option("--no-api", help="start the SuperLink only")] = False,
) -> None:
    """Run the SuperLink (TLS, SuperNode authentication) and the coordinator API until Ctrl+C."""
    from fl_server.deploy.coordinator import Coordinator

    cfg = _config(config)
    if no_api:
        cfg.api.enabled = False
    coordinator = Coordinator(cfg)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        link = _guard(coordinator.start_superlink)
        console.print(
            f"SuperLink on {cfg.superlink.host}:{cfg.superlink.port} (TLS, node authentication); "
            f"log {link.log_path}"
        )
        api = _guard(coordinator.start_api)
        if api is not None:
            console.print(f"API and dashboard on http://{cfg.api.host}:{cfg.api.port}/dashboard/")
        console.print("Ctrl+C stops both.")
        while not stopping:
            for proc in (link, api):
                if proc is not None and not proc.alive():
                    err.print(
                        f"[red]error:[/] {proc.name} exited with code {proc.returncode()}; "
                        f"see {proc.log_path}"
                    )
                    raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        coordinator.stop()


def register_node_command(
    name: Annotated[str, typer.Argument(help="the institution's name (as in the API)")],
    public_key: Annotated[Path, typer.Argument(help="its node's public key (node-key.pub)")],
    config: ConfigOption = Path(DEFAULT_FILE),
) -> None:
    """Allow an institution's SuperNode to connect (`flwr supernode register`)."""
    from fl_server.deploy.coordinator import Coordinator

    node_id = _guard(lambda: Coordinator(_config(config)).register_node(name, public_key))
    console.print(f"node of [cyan]{name}[/] registered: node id {node_id}")


def run_command(
    task: Annotated[str, typer.Argument(help="the task to train, e.g. credit-default")],
    config: ConfigOption = Path(DEFAULT_FILE),
    rounds: Annotated[int | None, typer.Option(help="federated rounds")] = None,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="each institution's epsilon for the run")
    ] = None,
    no_dp: Annotated[
        bool, typer.Option("--no-dp", help="train without DP (institutions may refuse)")
    ] = False,
    no_he: Annotated[
        bool, typer.Option("--no-he", help="plaintext FedAvg instead of encrypted sums")
    ] = False,
    min_clients: Annotated[int | None, typer.Option(help="institutions a round needs")] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of the initial model and local training")
    ] = None,
    local_epochs: Annotated[int, typer.Option(help="0: the task's default")] = 0,
    run_id: Annotated[str, typer.Option(help="a run id of your own (default: generated)")] = "",
    resume: Annotated[
        str | None, typer.Option("--resume", help="continue this run from its last checkpoint")
    ] = None,
    no_plan: Annotated[
        bool,
        typer.Option(
            "--no-plan", help="skip the knowledge graph: every registered institution may join"
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="follow the run until it ends")
    ] = True,
    timeout: Annotated[float, typer.Option(help="seconds --wait follows the run")] = 24 * 3600.0,
) -> None:
    """Plan a run from the knowledge graph and submit it to the SuperLink (`flwr run`)."""
    from fl_server.deploy.coordinator import Coordinator, RunRequest
    from fl_server.deploy.planning import plan_run

    cfg = _config(config)
    coordinator = Coordinator(cfg)
    if resume is not None:
        submitted = _guard(lambda: coordinator.resume(resume))
        console.print(f"run [cyan]{resume}[/] resubmitted (Flower run {submitted.flower_run_id})")
    else:
        d = cfg.run
        if not no_he and d.he_public_context is None:
            err.print(
                "[red]error:[/] no \\[run] he-public-context in the configuration; set it to the "
                "key ceremony's he-public-context.json, or pass --no-he"
            )
            raise typer.Exit(2)
        plan = None
        if not no_plan:
            plan, note = _guard(lambda: plan_run(cfg, task))
            console.print(escape(note))
        request = RunRequest(
            task=task,
            rounds=rounds or d.rounds,
            run_id=run_id,
            min_clients=min_clients or d.min_clients,
            dp=not no_dp,
            dp_epsilon=dp_epsilon if dp_epsilon is not None else d.dp_epsilon,
            dp_delta=d.dp_delta,
            he_public_context=None if no_he else d.he_public_context,
            checkpoint_dir=d.checkpoint_dir,
            seed=seed if seed is not None else d.seed,
            local_epochs=local_epochs,
            connect_timeout=d.connect_timeout,
            round_timeout=d.round_timeout,
            plan=plan,
        )
        submitted = _guard(lambda: coordinator.submit(request))
        console.print(
            f"run [cyan]{submitted.run_id}[/] submitted (Flower run {submitted.flower_run_id}); "
            f"resume it after a crash with: fl-server run {task} --resume {submitted.run_id}"
        )
    print(submitted.run_id)
    if not wait:
        return
    info = _guard(lambda: coordinator.wait(submitted.flower_run_id, timeout))
    if not info.succeeded:
        details = info.raw.get("status-details", "")
        err.print(f"[red]run {submitted.run_id} ended {info.status}:[/] {details}")
        raise typer.Exit(1)
    console.print(f"[green]run {submitted.run_id} finished[/]")


def register(app: typer.Typer) -> None:
    """Add the deployment commands to a Typer app (fl-server)."""
    app.command("certs")(certs_command)
    app.command("start")(start_command)
    app.command("register-node")(register_node_command)
    app.command("run")(run_command)


deploy_app = typer.Typer(
    help="Deploy a federation: certificates, SuperLink, node registration, runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
register(deploy_app)

if __name__ == "__main__":
    deploy_app()
