"""Flower's own CLI (`flwr`), driven with a private FLWR_HOME and JSON output.

The coordinator talks to its SuperLink the way an operator would: `flwr supernode register`,
`flwr run`, `flwr ls`, `flwr stop`. A private FLWR_HOME keeps the connection (address and
CA certificate) apart from whatever the operator's own `~/.flwr` holds.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from fl_server.deploy.environment import executable, process_env
from fl_server.deploy.errors import DeployError

CONNECTION = "fedkg"


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    status: str  # Flower's: "pending", "starting", "running", "finished:completed", ...
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status.startswith("finished")

    @property
    def succeeded(self) -> bool:
        return self.status == "finished:completed"


def write_connection(flwr_home: Path, address: str, root_certificates: Path) -> Path:
    """$FLWR_HOME/config.toml with one connection, `fedkg`, made the default."""
    flwr_home = Path(flwr_home)
    flwr_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {
        "superlink": {
            "default": CONNECTION,
            CONNECTION: {
                "address": address,
                "root-certificates": str(Path(root_certificates).expanduser().resolve()),
            },
        }
    }
    path = flwr_home / "config.toml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(doc))
    tmp.replace(path)
    return path


def toml_value(value: Any) -> str:
    """One value in `--run-config` syntax (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON escaping is valid TOML


class FlowerCli:
    def __init__(self, flwr_home: Path, timeout: float = 120.0) -> None:
        self.flwr_home = Path(flwr_home)
        self.timeout = timeout

    def _call(self, args: Sequence[str], what: str) -> dict[str, Any]:
        argv = [executable("flwr"), *args, "--format", "json"]
        try:
            res = subprocess.run(
                argv,
                env=process_env(self.flwr_home),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise DeployError(
                f"{what}: `flwr {args[0]}` did not answer within {self.timeout:.0f} s; "
                "is the SuperLink running (`fl-server start`)?"
            ) from None
        out = res.stdout.strip()
        doc: dict[str, Any] = {}
        if out:
            try:
                doc = json.loads(out[out.find("{") :])
            except ValueError:
                doc = {}
        if res.returncode != 0 or doc.get("success") is False:
            reason = doc.get("error-message") or (res.stderr or res.stdout).strip()
            reason = " ".join(str(reason).split())[-500:]
            raise DeployError(f"{what} failed: {reason}")
        return doc

    def register_node(self, public_key: Path, name: str) -> int:
        doc = self._call(
            ["supernode", "register", str(public_key), CONNECTION, "--name", name],
            f"registering node {name!r}",
        )
        return int(doc["node-id"])

    def unregister_node(self, node_id: int) -> None:
        self._call(
            ["supernode", "unregister", str(node_id), CONNECTION], f"unregistering {node_id}"
        )

    def list_nodes(self) -> list[dict[str, Any]]:
        doc = self._call(["supernode", "list", CONNECTION], "listing nodes")
        return list(doc.get("nodes", []))

    def submit(self, app_dir: Path, overrides: Mapping[str, Any]) -> int:
        args = ["run", str(app_dir), CONNECTION]
        for key, value in overrides.items():
            args += ["--run-config", f"{key}={toml_value(value)}"]
        doc = self._call(args, "submitting the run")
        return int(doc["run-id"])

    def run_info(self, run_id: int) -> RunInfo:
        doc = self._call(["ls", CONNECTION, "--run-id", str(run_id)], f"looking up run {run_id}")
        runs = doc.get("runs", [])
        if not runs:
            raise DeployError(f"the SuperLink knows no run {run_id}")
        raw = runs[0]
        return RunInfo(int(raw.get("run-id", run_id)), str(raw.get("status", "")), raw)

    def stop(self, run_id: int) -> None:
        self._call(["stop", str(run_id), CONNECTION], f"stopping run {run_id}")
