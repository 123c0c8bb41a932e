"""Prometheus metrics of one gateway (its own registry, so several apps can live in one process).

With ``reliq gateway --workers N`` every process records into files under
``PROMETHEUS_MULTIPROC_DIR`` (``gateway.processes`` creates that directory for the run and removes
it at the end) and a scrape, whichever process serves it, reads them all: counters and the
histogram add up over processes (a process that died keeps its counts), the per-process gauges
(``flushes``, ``placed``, ``waiters``) are summed over live processes, the gauges read from Redis
at scrape time report the most recent read. A starting process forgets the live gauges of dead
ones (a worker uvicorn replaced after a crash).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"  # the route label of every request that matches no route (404s, junk paths)


def route_label(scope: MutableMapping[str, Any]) -> str:
    """The ``route`` label of a request: the first segment of the route it matched (``/send``,
    ``/call``, ``/invocations``, ``/admin``, ``/healthz``, ...: every route starts with a fixed
    segment), or ``other``. Read after the request ran: the router left ``scope["route"]`` (the hot
    lane ``reliq.hot``); a request refused before routing (401, 403) is matched against the route
    table. So the label set is the route table's, however many distinct paths clients send."""
    routed = "route" in scope or "reliq.hot" in scope
    if not routed and "app" in scope:
        routed = any(r.matches(scope)[0] is not Match.NONE for r in scope["app"].router.routes)
    if not routed:
        return OTHER
    return "/" + str(scope["path"]).lstrip("/").split("/", 1)[0]


class Resumptions(Collector):
    """``reliq_service_resumed_total``: suspended invocations queued again, per service. The
    count lives in Redis (the field ``resumed`` of each partition's ``minutes`` hash, bumped by the
    resume path of the Lua scripts), so it is a true counter shared by every gateway; the scrape
    reads it (``/metrics``) and this collector reports what was read."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "reliq_service_resumed", "Suspended invocations queued again (resumptions)", labels=["service"]
        )
        for service, n in sorted(self.totals.items()):
            family.add_metric([service], n)
        yield family


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges (``livesum``) of processes that are gone from ``directory``."""
    for f in Path(directory).glob("gauge_live*_*.db"):
        pid = f.stem.rsplit("_", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.resumed = Resumptions()
        self.registry.register(self.resumed)
        self.directory = os.environ.get(MULTIPROC_DIR) or None
        self.scraped = self.registry
        if self.directory is not None:  # one process of several: a scrape reads every process' files
            self.scraped = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.scraped, self.directory)  # type: ignore[no-untyped-call]
            self.scraped.register(self.resumed)
        self.requests = Counter(
            "reliq_gateway_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.register_seconds = Histogram(
            "reliq_gateway_register_seconds",
            "Registration + durability confirmation latency",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.durability = Gauge(
            "reliq_gateway_durability",
            "Durability level in force (1 = current)",
            ["level"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.redis_up = Gauge(
            "reliq_gateway_redis_up",
            "1 when the last scrape read the service gauges from Redis, 0 when Redis did not answer",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.flushes = Gauge(
            "reliq_gateway_flushes",
            "Registration script calls (group commits)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.waiters = Gauge(
            "reliq_gateway_waiters",
            "Requests waiting for an outcome",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.placed = Gauge(
            "reliq_gateway_placed",
            "Registrations placed through group commits",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.backlog = Gauge(
            "reliq_service_backlog",
            "Stream entries not yet acked",
            ["service"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.pending = Gauge(
            "reliq_service_pending",
            "Entries delivered and not yet acked",
            ["service"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.backlog_levels = Gauge(
            "reliq_service_backlog_priority",
            "Stream entries not yet acked, per priority level (high, normal, low)",
            ["service", "priority"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.parked = Gauge(
            "reliq_service_parked",
            "Parked (failed) invocations",
            ["service"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.delayed = Gauge(
            "reliq_service_delayed",
            "Scheduled or retrying invocations",
            ["service"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.suspended = Gauge(
            "reliq_service_suspended",
            "Suspended invocations (waiting for children, timers or promises)",
            ["service"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

        self.waiting = Gauge(
            "reliq_waiting",
            "Invocations waiting by cause: concurrency (a key's line), rate (a rate limit), scheduled",
            ["service", "cause"],
            registry=self.registry,
        )

    def set_batches(self, flushes: int, placed: int) -> None:
        self.flushes.set(flushes)
        self.placed.set(placed)

    def set_durability(self, level: str) -> None:
        for labels in list(self.durability._metrics):  # 0, not removed: other processes read the files
            self.durability.labels(*labels).set(0)
        self.durability.labels(level=level).set(1)

    def started(self) -> None:
        """In a process of several: forget the live gauges of processes that died."""
        if self.directory is not None:
            forget_dead_processes(self.directory)

    def stopped(self) -> None:
        """In a process of several: its live gauges go with it (its counts stay)."""
        if self.directory is not None:
            multiprocess.mark_process_dead(os.getpid(), self.directory)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        return generate_latest(self.scraped)
