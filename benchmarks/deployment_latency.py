"""Per-round latency of a deployed federation: fedkg's SuperNode vs Flower's defaults.

Three institutions on loopback, TLS and SuperNode authentication on, DP and HE on, the
credit-default MLP. The same run (same seed, rounds, data) goes once through Flower's
SuperNode as shipped (3 s idle polling, a fresh `flwr-clientapp` process per message) and
once through fedkg's (short polling, a warm worker forking per message), side by side.

Per round it reports the wall time the coordinator measured and the ClientApp compute the
SuperLink accounted (Flower's `compute-time`, per institution and round, fedkg's run: it
contains no process start-up). Overhead = wall time - that compute.

    .venv/bin/python benchmarks/deployment_latency.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from fl_server.checkpoint import CheckpointStore
from fl_server.deploy.coordinator import RunRequest
from fl_server.deploy.loopback import LoopbackFederation


def measure(root: Path, flower_defaults: bool, rounds: int) -> tuple[list[float], float]:
    """Round wall times, and ClientApp seconds per institution per round."""
    with LoopbackFederation(root, flower_defaults=flower_defaults) as fed:
        fed.start()
        run = fed.coordinator.submit(
            RunRequest(
                task="credit-default",
                rounds=rounds,
                run_id="latency",
                min_clients=3,
                he_public_context=fed.he_public,
                dp_accountant="rdp",
                local_epochs=1,
                seed=1,
            )
        )
        info = fed.coordinator.wait(run.flower_run_id, 1800)
        if not info.succeeded:
            raise SystemExit(f"run failed: {info.raw.get('status-details')}")
        store = CheckpointStore(fed.config.run.checkpoint_dir)
        walls = [store.load("latency", r).state["record"]["seconds"] for r in range(1, rounds + 1)]
        # Messages: identity + feature statistics, then train + evaluate per round.
        messages = 2 + 2 * rounds
        client_s = float(info.raw["compute-time"]["clientapp-seconds"])
        per_round = client_s / len(fed.institutions) / messages * 2
        return walls, per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours, compute = measure(Path(tmp) / "fedkg", False, args.rounds)
        flower, _ = measure(Path(tmp) / "flower", True, args.rounds)
    print(f"{'round':>5} {'Flower defaults s':>18} {'fedkg s':>9}")
    for i, (a, b) in enumerate(zip(flower, ours, strict=True), 1):
        print(f"{i:>5} {a:>18.1f} {b:>9.1f}")
    fm, om = statistics.mean(flower), statistics.mean(ours)
    print(f"mean round: Flower defaults {fm:.1f} s, fedkg {om:.1f} s, ratio {fm / om:.1f}x")
    print(
        f"ClientApp compute per institution and round (fedkg): {compute:.1f} s; overhead per "
        f"round: Flower defaults {fm - compute:.1f} s, fedkg {om - compute:.1f} s"
    )


if __name__ == "__main__":
    main()
