"""Load on the coordinator's run-status endpoint, over loopback, side by side with /healthz.

Starts `fl-server api` in its own process on a fresh database (a SQLite file, or the
PostgreSQL database given with --database-url, in a private schema dropped afterwards) holding one recorded 10-round run, then sends
a bounded number of requests from `--concurrency` concurrent clients and prints requests/s
and latency percentiles for

  * GET /healthz                   (baseline: no key, one trivial query)
  * GET /api/runs/{id}/status      (key checked, run looked up: what a ServerApp or UI polls)

and the ratio of the two, so the cost of authentication and the lookup reads directly.

    .venv/bin/python benchmarks/api_load.py [--requests 3000] [--concurrency 16]
    .venv/bin/python benchmarks/api_load.py --database-url postgresql://fedkg:fedkg@127.0.0.1/fedkg_test
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from fl_server.db import Database, resolve_url
from fl_server.db.institutions import create_admin_key
from fl_server.db.recorder import RunRecorder
from fl_server.federation import RoundRecord

console = Console(width=110)


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _seed(url: str) -> str:
    db = Database(url)
    with db.write() as s:
        token = create_admin_key(s, actor="benchmark")
    db.dispose()
    rec = RunRecorder(url, "bench-run", "credit-default", {"rounds": 10})
    rec.start()
    for rnd in range(1, 11):
        rec.on_round(
            RoundRecord(
                rnd,
                {"accuracy": 0.7, "loss": 0.5},
                {},
                [f"bank-{i}" for i in range(5)],
                {},
                10**5,
                2 * 10**5,
                1.0,
            )
        )
    rec.close()
    return token


@contextmanager
def _scratch(given: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a private schema dropped afterwards."""
    if given is None:
        yield f"sqlite:///{tmp / 'coordinator.db'}"
        return
    url = resolve_url(given)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(
    base: str, path: str, headers: dict[str, str], total: int, concurrency: int
) -> Result:
    latencies: list[float] = []
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:
        for _ in range(min(50, total)):  # warm-up: connections, caches
            await client.get(path)

        async def worker() -> None:
            nonlocal sent, errors
            while sent < total:
                sent += 1
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Result(path, len(latencies), errors, seconds, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=3000, help="requests per endpoint (bounded)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, _scratch(args.database_url, Path(tmp)) as url:
        token = _seed(url)
        port = _free_port()
        server = subprocess.Popen(
            [
                Path(sys.executable).parent / "fl-server",
                "api",
                "--port",
                str(port),
                "--database-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(
                            "the API did not start; run `fl-server api` by hand to see why"
                        ) from None
                    time.sleep(0.2)
            auth = {"Authorization": f"Bearer {token}"}
            baseline = asyncio.run(_load(base, "/healthz", {}, args.requests, args.concurrency))
            status = asyncio.run(
                _load(base, "/api/runs/bench-run/status", auth, args.requests, args.concurrency)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)

    backend = resolve_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
    table = Table(
        title=f"loopback load, {args.concurrency} concurrent clients, {backend}, 1 uvicorn worker"
    )
    for col in ("endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "endpoint" else "left")
    for r in (baseline, status):
        table.add_row(
            r.name,
            str(r.requests),
            str(r.errors),
            f"{r.rate:,.0f}",
            f"{r.pct(0.50):.1f}",
            f"{r.pct(0.95):.1f}",
            f"{r.pct(0.99):.1f}",
            f"{statistics.fmean(r.latencies) * 1000:.1f}",
        )
    console.print(table)
    console.print(
        f"run status vs /healthz: {status.rate / baseline.rate:.2f}x the throughput, "
        f"{status.pct(0.99) / baseline.pct(0.99):.2f}x the p99 latency"
    )


if __name__ == "__main__":
    main()
