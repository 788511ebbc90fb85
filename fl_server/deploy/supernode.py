"""fedkg's SuperNode: Flower's `flower-supernode`, with shorter waits and a warm worker.

`python -m fl_server.deploy.supernode [fedkg options] -- [flower-supernode options]`

Flower's SuperNode sleeps a fixed 3 s whenever the SuperLink has no message for it and
polls every 0.5 s for the ClientApp's reply; its heartbeat lets the SuperLink notice a dead
node only after 60 s. None of these is a setting, so this entry point adjusts them in
Flower's modules at start-up (nothing in site-packages changes), then runs Flower's own
`flower-supernode` main unchanged. With the warm worker (the default) the SuperNode runs in
`--isolation process` and `fl_server.deploy.clientapp_worker` executes its tasks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from typing import Any

# Flower accepts heartbeat intervals from 10 s; the SuperLink declares a node gone after two.
MIN_HEARTBEAT_INTERVAL = 10


class _CappedSleep(types.SimpleNamespace):
    """Stands in for the `time` module inside one Flower module: sleeps at most `cap`."""

    def __init__(self, cap: float) -> None:
        super().__init__()
        self.cap = cap

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def tune_flower(poll_interval: float, heartbeat_interval: int) -> None:
    """Shorten the SuperNode's idle sleep and reply wait; shorten its heartbeat."""
    import flwr.supercore.heartbeat as heartbeat
    import flwr.supernode.fleet_http_connection as fleet
    import flwr.supernode.start_client_internal as loop

    loop.time = _CappedSleep(poll_interval)  # type: ignore[assignment]
    interval = max(MIN_HEARTBEAT_INTERVAL, heartbeat_interval)
    fleet.HEARTBEAT_DEFAULT_INTERVAL = interval  # type: ignore[attr-defined]
    heartbeat.HEARTBEAT_DEFAULT_INTERVAL = interval  # type: ignore[attr-defined]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def start_worker(
    flower_argv: list[str], poll: float, he_context: str | None
) -> subprocess.Popen[bytes]:
    host = _option(flower_argv, "--host") or "127.0.0.1"
    port = _option(flower_argv, "--port") or "9094"
    argv = [
        sys.executable,
        "-m",
        "fl_server.deploy.clientapp_worker",
        "--runtime-api-address",
        f"{host}:{port}",
        "--parent-pid",
        str(os.getpid()),
        "--poll",
        str(poll),
    ]
    secret = _option(flower_argv, "--superexec-auth-secret-file")
    if secret:
        argv += ["--superexec-auth-secret-file", secret]
    if he_context:
        argv += ["--he-context", he_context]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def he_context_of(node_config: str | None) -> str | None:
    """The he-context path in a `--node-config` string, to preload it in the worker."""
    if not node_config:
        return None
    from flwr.common.config import parse_config_args

    value = parse_config_args([node_config]).get("he-context")
    return str(value) if value else None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, flower_argv = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else ([], argv)
    )
    parser = argparse.ArgumentParser(prog="python -m fl_server.deploy.supernode")
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--heartbeat-interval", type=int, default=MIN_HEARTBEAT_INTERVAL)
    parser.add_argument("--worker-poll", type=float, default=0.1)
    parser.add_argument(
        "--flower-isolation",
        action="store_true",
        help="Flower's own SuperExec (a fresh flwr-clientapp per message) instead of the worker",
    )
    args = parser.parse_args(ours)
    tune_flower(args.poll_interval, args.heartbeat_interval)
    if not args.flower_isolation:
        if _option(flower_argv, "--isolation") not in (None, "process"):
            raise SystemExit("the warm worker needs --isolation process (or no --isolation)")
        if _option(flower_argv, "--isolation") is None:
            flower_argv += ["--isolation", "process"]
        start_worker(
            flower_argv, args.worker_poll, he_context_of(_option(flower_argv, "--node-config"))
        )
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *flower_argv]
    flower_supernode()


if __name__ == "__main__":
    main()
