"""`flwr run .` runs fedkg's ServerApp and ClientApp the Flower way (local simulation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _superlinks() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "flower-superlink"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _stop(pids: set[int], grace: float = 10.0) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if Path(f"/proc/{p}").exists()}
        time.sleep(0.2)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_flwr_run_local_simulation(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(tmp_path / "flwr"),
        "FEDKG_SIM_DIR": str(tmp_path / "sim"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    before = _superlinks()
    try:
        res = subprocess.run(
            [
                str(bin_dir / "flwr"),
                "run",
                ".",
                "--stream",
                "--federation-config",
                "num-supernodes=3",
                "--run-config",
                'num-server-rounds=2 task="breast-cancer"',
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        _stop(_superlinks() - before)  # `flwr run` leaves its SuperLink running
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-3000:]
    assert "round 2: " in log and "clients=3" in log
    assert len(list((tmp_path / "sim").rglob("node-*.csv"))) == 3
