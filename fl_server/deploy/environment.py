"""The environment every Flower process fedkg starts runs in.

Flower's telemetry and update check call out to the internet; a bank's or a hospital's
machines must not, so both are off. Runtime dependency installation (`uv sync` per run) is
off too: the institution decides what is installed, not the run.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from fl_server.deploy.errors import DeployError

QUIET_FLOWER = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}


def bin_dir() -> Path:
    """Where this interpreter's console scripts live (flower-superlink, flwr, ...)."""
    return Path(sys.executable).parent


def executable(name: str) -> str:
    """The console script `name` next to this interpreter, else on PATH."""
    local = bin_dir() / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise DeployError(
            f"`{name}` is not installed next to {sys.executable}; pip install 'fedkg[server]'"
        )
    return found


def process_env(
    flwr_home: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(QUIET_FLOWER)
    env["PATH"] = f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    if extra:
        env.update(extra)
    return env
