"""A warm ClientApp worker: one long-lived process per SuperNode that forks per task.

Flower's default SuperExec starts a fresh `flwr-clientapp` process for every message, which
imports torch, Opacus and TenSEAL again each time (seconds per message). This worker imports
them once, then for each task the SuperNode offers it forks a child that already has them:
the child runs exactly one task (Flower's one-process-per-task isolation is kept) and exits.

It also pins what runs: the ClientApp of the fedkg installed here, never code that arrives
in a run's FAB. A run whose FAB names another ClientApp is refused.

Started by `fl_server.deploy.supernode` next to a SuperNode in `--isolation process` mode;
it talks to that SuperNode's Runtime API on the loopback interface.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.supercore.fab import Fab
    from flwr.supercore.runtime import RuntimeHttpClient

log = logging.getLogger("fedkg.worker")

CLIENT_APP = "fl_client.app:app"


class ForeignAppError(RuntimeError):
    """The run asks this node to execute a ClientApp other than the installed fedkg one."""


def check_fab(fab: Fab) -> None:
    from flwr.common.config import get_fab_config

    try:
        components = get_fab_config(fab.content)["tool"]["flwr"]["app"]["components"]
    except (KeyError, ValueError, TypeError) as exc:
        raise ForeignAppError(f"the run's FAB has no readable components ({exc})") from None
    wanted = components.get("clientapp")
    if wanted != CLIENT_APP:
        raise ForeignAppError(
            f"this node runs only fedkg's ClientApp ({CLIENT_APP}); the run asks for {wanted!r}"
        )


def _runtime_client(
    address: str, interceptors: list[object], max_time: float | None = None
) -> RuntimeHttpClient:
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    retry = make_simple_http_retry_invoker()
    retry.max_time = max_time
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,  # the Runtime API listens on loopback only
        root_certificates=None,
        interceptors=interceptors,  # type: ignore[arg-type]
        retry_invoker=retry,
    )


def run_task(app: ClientApp, address: str, token: str) -> int:
    """One task, as `flwr-clientapp` runs it, with the preloaded app. Returns an exit code."""
    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode, SubStatus
    from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
    from flwr.supercore.interceptors import (
        RuntimeTokenHttpInterceptor,
        RuntimeVersionHttpInterceptor,
    )
    from flwr.supernode.runtime.run_clientapp import (
        pull_task_input,
        push_message,
        push_task_output,
    )

    client = _runtime_client(
        address,
        [
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(token),
        ],
    )
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    heartbeat.start()
    message = context = reply = None
    status, details, code = SubStatus.FAILED, "task failed", 1
    try:
        message, context, _run, fab = pull_task_input(client)
        check_fab(fab)
        reply = app(message=message, context=context)
        status, details, code = SubStatus.COMPLETED, "", 0
    except Exception as exc:
        log.exception("ClientApp raised an exception")
        details = f"{type(exc)}:<'{exc}'>"
        if message is not None:
            reply = Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details),
                reply_to=message,
            )
    finally:
        try:
            if reply is not None and context is not None:
                push_message(client, reply, context)
        except Exception:
            log.exception("could not push the reply to the SuperNode")
            code = 1
        push_task_output(client, context, status, details)
        heartbeat.stop()
        client.close()
    return code


def _preload(he_context: Path | None) -> ClientApp:
    """Import what every task needs, and read the HE key once, before any fork."""
    from fl_client.app import app

    for module in ("opacus", "tenseal", "fl_server.strategy.he_records", "privacy.dp"):
        with contextlib.suppress(ImportError):
            __import__(module)
    if he_context is not None and he_context.exists():
        from privacy.he.keys import load_secret_context

        load_secret_context(he_context)
    return app


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(children: dict[int, tuple[int, float]]) -> None:
    """Collect finished task processes (non-blocking) and log how long each took."""
    for pid, (task_id, started) in list(children.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            del children[pid]
            log.info(
                "task %s done in %.2f s (exit %d)",
                task_id,
                time.perf_counter() - started,
                os.waitstatus_to_exitcode(status),
            )


def _kill_all(children: dict[int, tuple[int, float]]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def serve(
    address: str,
    parent_pid: int,
    *,
    poll: float = 0.05,
    auth_secret: bytes | None = None,
    he_context: Path | None = None,
) -> None:
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import (
        RuntimeVersionHttpInterceptor,
        SuperExecAuthHttpInterceptor,
    )

    app = _preload(he_context)
    interceptors: list[object] = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
    if auth_secret:
        interceptors.append(
            SuperExecAuthHttpInterceptor(
                master_secret=auth_secret,
                protected_methods=frozenset({"/flwr.proto.Runtime/AcquireTask"}),
            )
        )
    # Bounded retries: between polls the worker checks that its SuperNode still lives.
    client = _runtime_client(address, interceptors, max_time=2.0)
    request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP.value])
    log.info("fedkg ClientApp worker ready (SuperNode runtime API %s)", address)
    # Tasks run side by side, as Flower's SuperExec runs them: a task stuck on a run that
    # ended must not hold up the next run's messages.
    children: dict[int, tuple[int, float]] = {}
    try:
        while _alive(parent_pid):
            _reap(children)
            try:
                res = client.AcquireTask(request)
            except Exception as exc:  # the SuperNode is starting, restarting or gone
                log.debug("no task from the SuperNode (%s)", exc)
                time.sleep(max(poll, 0.5))
                continue
            if not (res.HasField("task") and res.token):
                time.sleep(poll)
                continue
            started = time.perf_counter()
            child = os.fork()
            if child == 0:
                code = 1
                try:
                    code = run_task(app, address, res.token)
                finally:
                    os._exit(code)
            children[child] = (res.task.task_id, started)
    finally:
        _kill_all(children)  # the SuperNode is gone: its tasks cannot report anyway
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between task polls")
    parser.add_argument("--superexec-auth-secret-file", type=Path)
    parser.add_argument("--he-context", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    secret = (
        args.superexec_auth_secret_file.read_bytes() if args.superexec_auth_secret_file else None
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            args.runtime_api_address,
            args.parent_pid,
            poll=args.poll,
            auth_secret=secret,
            he_context=args.he_context,
        )


if __name__ == "__main__":
    main()
