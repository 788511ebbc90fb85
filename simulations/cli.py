"""`fl-sim`: run whole federations of simulated institutions on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fl_server.federation import RoundRecord
from simulations.report import print_summary
from simulations.runner import SimulationConfig, run
from simulations.scenarios import SCENARIOS

app = typer.Typer(
    help="Simulate a federation of institutions (Flower Simulation Engine) and report the "
    "price of federation against a centralised baseline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _execute(cfg: SimulationConfig) -> dict:
    task = cfg.resolved_task()
    console.print(
        f"[bold]{cfg.scenario}[/]: {cfg.clients} institutions train [cyan]{task.name}[/] for "
        f"{cfg.rounds} rounds ({cfg.partition}"
        + (f", alpha={cfg.alpha}" if cfg.partition == "dirichlet" else "")
        + f", seed {cfg.seed})"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rounds"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("federated training", total=cfg.rounds)

        def on_round(r: RoundRecord) -> None:
            acc = r.metrics.get("accuracy", float("nan"))
            progress.update(bar, advance=1, description=f"round {r.round}: accuracy {acc:.3f}")

        metrics = run(cfg, on_round=on_round)
    print_summary(metrics, console)
    console.print(f"Results: [bold]{cfg.out / 'metrics.json'}[/] and plots in {cfg.out}/")
    return metrics


@app.command("run")
def run_command(
    scenario: Annotated[str, typer.Argument(help=f"one of: {', '.join(SCENARIOS)}")],
    clients: Annotated[int, typer.Option(help="number of simulated institutions")] = 5,
    rounds: Annotated[int, typer.Option(help="federated rounds")] = 10,
    task: Annotated[str | None, typer.Option(help="task (default: the scenario's)")] = None,
    partition: Annotated[str, typer.Option(help="iid or dirichlet (label skew)")] = "dirichlet",
    alpha: Annotated[
        float, typer.Option(help="Dirichlet concentration; smaller = more skew")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="seed for partitioning, init and training")] = 42,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("results/run"),
    local_epochs: Annotated[int | None, typer.Option(help="local epochs per round")] = None,
    batch_size: Annotated[int | None, typer.Option(help="local batch size")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="local learning rate")] = None,
    scaling: Annotated[
        str, typer.Option(help="federated: standardise on federation-wide totals; local: own")
    ] = "federated",
    he: Annotated[
        bool, typer.Option("--he/--no-he", help="sum updates under CKKS encryption")
    ] = True,
    dp: Annotated[
        bool, typer.Option("--dp/--no-dp", help="train with DP-SGD at every institution")
    ] = True,
    dp_epsilon: Annotated[
        float, typer.Option(help="privacy target for the whole run (all rounds)")
    ] = 8.0,
    dp_delta: Annotated[float, typer.Option(help="DP delta; below 1/records")] = 1e-5,
    max_grad_norm: Annotated[float, typer.Option(help="per-sample gradient clip norm")] = 1.0,
    kg: Annotated[
        bool,
        typer.Option(
            "--kg/--no-kg",
            help="institutions use their own column names and units, aligned by the knowledge graph",
        ),
    ] = True,
    audit: Annotated[
        bool, typer.Option(help="after training, run membership attacks at every institution")
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(help="where the institutions' keys and ledgers live (default: --out)"),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="per-round checkpoints (default: OUT/checkpoints)")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="continue run RUN_ID from its last completed round")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="run on a Ray cluster, e.g. 10.0.0.5:6379 or 'auto'")
    ] = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs Ray may use locally")] = None,
) -> None:
    """Run one simulated federation; writes OUT/metrics.json, OUT/rounds.png, OUT/roc.png."""
    cfg = SimulationConfig(
        scenario=scenario,
        task=task,
        clients=clients,
        rounds=rounds,
        partition=partition,
        alpha=alpha,
        seed=seed,
        out=out,
        local_epochs=local_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        scaling=scaling,
        he=he,
        dp=dp,
        dp_epsilon=dp_epsilon,
        dp_delta=dp_delta,
        max_grad_norm=max_grad_norm,
        home=home,
        audit=audit,
        kg=kg,
        checkpoint_dir=checkpoint_dir,
        resume_run=resume,
        ray_address=ray_address,
        cpus=cpus,
    )
    _guarded(lambda: _execute(cfg))


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="where the demo writes its results")] = Path("results"),
) -> None:
    """The banks scenario (5 institutions, non-IID), then the hospitals scenario."""

    def both() -> None:
        _execute(SimulationConfig(scenario="banks", clients=5, rounds=10, out=out / "banks"))
        _execute(
            SimulationConfig(scenario="hospitals", clients=5, rounds=10, out=out / "hospitals")
        )
        console.print(
            f"\n[bold green]Demo complete.[/] Results in {out}/banks and {out}/hospitals.\n"
            f"Open them in the coordinator's dashboard: [bold].venv/bin/fl-server dashboard {out}[/]"
        )

    _guarded(both)


def _guarded(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
