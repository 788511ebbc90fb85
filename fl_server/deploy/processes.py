"""Child processes that are always stopped: their own process group, a log file, a deadline.

Every process fedkg starts (SuperLink, SuperNode, executor) runs in a session of its own so
that stopping it also stops whatever it started (Flower's SuperExec, ServerApp and ClientApp
processes), first politely (SIGTERM), then for sure (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fl_server.deploy.errors import DeployError


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise DeployError(f"cannot start {name} ({exc.strerror}): {self.argv[0]}") from None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM to the whole group, SIGKILL after `grace` seconds; idempotent."""
        try:
            if self.alive():
                _signal_group(self.pid, signal.SIGTERM)
                if self.wait(grace) is None:
                    _signal_group(self.pid, signal.SIGKILL)
                    self.wait(5.0)
            # Children that outlived their leader (same group) go too.
            _signal_group(self.pid, signal.SIGKILL)
        finally:
            self._log.close()
        return self.popen.poll()

    def kill(self) -> None:
        """kill -9 of the process group, as a crash would."""
        _signal_group(self.pid, signal.SIGKILL)
        self.wait(5.0)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise DeployError(
                f"{what}: cannot listen on {host}:{port} ({exc.strerror}); stop what uses it "
                "or pick another port in the configuration"
            ) from None


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    poll: float = 0.1,
) -> None:
    """Wait for `ready()`; fail early, with the log's tail, if `process` died meanwhile."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and not process.alive():
            raise DeployError(
                f"{process.name} exited with code {process.returncode()} before {what}; "
                f"its log ({process.log_path}) ends with:\n{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise DeployError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(poll)
