"""What differential privacy costs, measured side by side in one process.

1. Local-training throughput (samples/s) of each bundled task's model with DP-SGD vs without,
   same data, batch size and loop, alternating repeats; printed as DP/plain ratios for each of
   Opacus's per-sample-gradient modes.
2. Final federated accuracy at ε = 1, 3, 8 vs non-private, on credit-default (banks) and
   breast-cancer (hospitals), 5 institutions, non-IID (Dirichlet α = 1), plaintext aggregation.

    .venv/bin/python benchmarks/dp_overhead.py                # both parts (~10 min on 2 cores)
    .venv/bin/python benchmarks/dp_overhead.py --throughput   # part 1 only
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from fl_client.tasks import get_task, list_tasks
from fl_client.training import make_loader, make_optimizer, train_epochs
from privacy.dp import DPConfig, make_private

MODES = ("hooks", "ew")


def _throughput(task_name: str, mode: str | None, n: int, epochs: int) -> float:
    task = get_task(task_name)
    torch.manual_seed(0)
    model = task.build_model()
    shape = task.schema.image_shape if task.modality == "image" else (task.schema.input_dim,)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, task.schema.num_classes, n).astype(np.int64)
    loader = make_loader(x, y, task.batch_size, 0)
    optimizer = make_optimizer(model, task.learning_rate)
    criterion = task.loss()
    if mode is not None:
        dp = DPConfig(noise_multiplier=1.0, grad_sample_mode=mode)
        p = make_private(model, optimizer, loader, criterion, dp, 1.0, noise_seed=0)
        model, optimizer, loader, criterion = p.module, p.optimizer, p.loader, p.criterion
    started = time.perf_counter()
    stats = train_epochs(model, loader, optimizer, criterion, epochs, torch.device("cpu"))
    return stats.examples_seen / (time.perf_counter() - started)


def throughput_table(console: Console, repeats: int) -> None:
    table = Table(title="local training throughput, DP-SGD vs plain (same batch size, 1 thread)")
    for col in ("task", "batch", "plain samples/s", *(f"DP {m} samples/s" for m in MODES)):
        table.add_column(col, justify="right")
    for m in MODES:
        table.add_column(f"ratio {m}", justify="right")
    for t in list_tasks():
        runs: dict[str | None, list[float]] = {None: [], **{m: [] for m in MODES}}
        for _ in range(repeats):  # interleaved, so machine noise hits every variant alike
            for mode in runs:
                runs[mode].append(_throughput(t.name, mode, 2000, 2))
        med = {k: statistics.median(v) for k, v in runs.items()}
        table.add_row(
            t.name,
            str(t.batch_size),
            f"{med[None]:,.0f}",
            *(f"{med[m]:,.0f}" for m in MODES),
            *(f"{med[m] / med[None]:.2f}" for m in MODES),
        )
    console.print(table)


def accuracy_table(console: Console, epsilons: list[float], rounds: int) -> None:
    from simulations.runner import SimulationConfig, run

    logging.getLogger("fedkg").setLevel(logging.ERROR)
    table = Table(
        title=f"final federated accuracy / AUC, 5 institutions, Dirichlet α=1, {rounds} rounds"
    )
    table.add_column("task")
    table.add_column("non-private", justify="right")
    for e in epsilons:
        table.add_column(f"ε = {e:g}", justify="right")
    table.add_column("centralised", justify="right")
    for scenario, task in (("banks", "credit-default"), ("hospitals", "breast-cancer")):
        cells = []
        central = ""
        for eps in (None, *epsilons):
            with tempfile.TemporaryDirectory() as tmp:
                m = run(
                    SimulationConfig(
                        scenario=scenario,
                        task=task,
                        clients=5,
                        rounds=rounds,
                        seed=42,
                        he=False,
                        dp=eps is not None,
                        dp_epsilon=eps,
                        out=Path(tmp),
                    )
                )
            cells.append(
                f"{m['final']['accuracy']:.3f} / {m['final'].get('auc', float('nan')):.3f}"
            )
            central = f"{m['centralized']['accuracy']:.3f} / {m['centralized'].get('auc', float('nan')):.3f}"
            console.print(f"  {task} ε={eps}: {cells[-1]}")
        table.add_row(task, *cells, central)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", action="store_true", help="only the throughput table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    console = Console()
    throughput_table(console, args.repeats)
    if not args.throughput:
        accuracy_table(console, args.epsilons, args.rounds)


if __name__ == "__main__":
    main()
