"""Prometheus metrics of one gateway (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match

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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.resumed = Resumptions()
        self.registry.register(self.resumed)
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
        )
        self.flushes = Gauge(
            "reliq_gateway_flushes", "Registration script calls (group commits)", registry=self.registry
        )
        self.waiters = Gauge(
            "reliq_gateway_waiters", "Requests waiting for an outcome", registry=self.registry
        )
        self.placed = Gauge(
            "reliq_gateway_placed", "Registrations placed through group commits", registry=self.registry
        )
        self.backlog = Gauge(
            "reliq_service_backlog", "Stream entries not yet acked", ["service"], registry=self.registry
        )
        self.pending = Gauge(
            "reliq_service_pending",
            "Entries delivered and not yet acked",
            ["service"],
            registry=self.registry,
        )
        self.parked = Gauge(
            "reliq_service_parked", "Parked (failed) invocations", ["service"], registry=self.registry
        )
        self.delayed = Gauge(
            "reliq_service_delayed", "Scheduled or retrying invocations", ["service"], registry=self.registry
        )
        self.suspended = Gauge(
            "reliq_service_suspended",
            "Suspended invocations (waiting for children, timers or promises)",
            ["service"],
            registry=self.registry,
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
        self.durability.clear()
        self.durability.labels(level=level).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
