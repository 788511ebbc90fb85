"""Prometheus metrics: request counts and latencies per route, and the coordinator's state."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fl_server.db import Database
from fl_server.db.models import AuditHead, Dataset, Institution, Run

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _StateCollector(Collector):
    """Read at scrape time, so the figures are those of the database, whoever wrote them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = GaugeMetricFamily("fedkg_runs", "runs by status", labels=["status"])
        institutions = GaugeMetricFamily("fedkg_institutions", "active institutions")
        datasets = GaugeMetricFamily("fedkg_datasets", "published (not withdrawn) data sets")
        audit = GaugeMetricFamily("fedkg_audit_entries", "entries in the audit log")
        try:
            with self.db.read() as s:
                for status, count in s.execute(
                    select(Run.status, func.count()).group_by(Run.status)
                ):
                    runs.add_metric([status], count)
                institutions.add_metric(
                    [],
                    s.scalar(select(func.count()).where(Institution.active.is_(True))) or 0,  # type: ignore[attr-defined]
                )
                datasets.add_metric(
                    [],
                    s.scalar(select(func.count()).where(Dataset.withdrawn_at.is_(None))) or 0,  # type: ignore[union-attr]
                )
                audit.add_metric([], s.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0)
        except SQLAlchemyError:
            return
        yield from (runs, institutions, datasets, audit)


class Metrics:
    """A registry per app, so several apps in one process (tests) do not collide."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fedkg_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fedkg_http_request_duration_seconds",
            "time to answer, by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.registry.register(_StateCollector(db))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None:
                template = "/dashboard" if scope["path"].startswith("/dashboard") else "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
