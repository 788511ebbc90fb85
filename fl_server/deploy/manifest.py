"""The Flower app a coordinator submits: a manifest, no code.

`flwr run DIR CONNECTION` packs DIR into a FAB and sends it to the SuperLink, which hands it
to the ServerApp and to every SuperNode. fedkg's FAB carries only `pyproject.toml`: which
components to run (`fl_server.app:app`, `fl_client.app:app`, both from the installed fedkg)
and every run-config key with its default, because Flower accepts `--run-config` overrides
only for keys the FAB declares. Institutions run the ClientApp of the fedkg they installed,
never code that arrives with a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from fl_server.deploy.errors import DeployError

SERVER_APP = "fl_server.app:app"
CLIENT_APP = "fl_client.app:app"
APP_NAME = "fedkg-federation"
PUBLISHER = "fedkg"

# Every key a deployed run understands, with its default. 0 for local-epochs, batch-size and
# learning-rate means "the task's own default"; "" for a path or URL means "none".
RUN_CONFIG_DEFAULTS: dict[str, Any] = {
    "task": "credit-default",
    "run-id": "",
    "num-server-rounds": 3,
    "local-epochs": 0,
    "batch-size": 0,
    "learning-rate": 0.0,
    "seed": 0,
    "min-clients": 2,
    "connect-timeout": 300.0,
    "round-timeout": 600.0,
    "scaling": "federated",
    "checkpoint-dir": "",
    "resume": False,
    "he-public-context": "",
    "dp": True,
    "dp-epsilon": 3.0,
    "dp-delta": 1e-5,
    "max-grad-norm": 1.0,
    "dp-accountant": "prv",
    "plan": "",
    "database-url": "",
}


def manifest(version: str | None = None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    if version is None:
        try:
            version = dist_version("fedkg")
        except PackageNotFoundError:
            version = "0.0.0"
    return {
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {
            "name": APP_NAME,
            "version": version,
            "description": "A fedkg federated run (components come from the installed fedkg)",
            "license": "Apache-2.0",
        },
        "tool": {
            "flwr": {
                "app": {
                    "publisher": PUBLISHER,
                    "components": {"serverapp": SERVER_APP, "clientapp": CLIENT_APP},
                    "config": dict(RUN_CONFIG_DEFAULTS),
                }
            }
        },
    }


def write_app_dir(directory: Path, version: str | None = None) -> Path:
    """Write (or refresh) the app directory `flwr run` packs; returns it."""
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "pyproject.toml"
        text = tomli_w.dumps(manifest(version))
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n!pyproject.toml\n!.gitignore\n")
    except OSError as exc:
        raise DeployError(f"cannot write the Flower app directory {directory} ({exc})") from None
    return directory


def unknown_keys(overrides: dict[str, Any]) -> list[str]:
    return sorted(set(overrides) - set(RUN_CONFIG_DEFAULTS))
