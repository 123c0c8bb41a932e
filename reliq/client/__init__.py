"""The producer side: register invocations, look them up, wait for results, cancel, redrive.

``Client`` is the only path to Redis for the gateway and for ``ctx.send``/``ctx.call``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, Unpack, overload

from reliq import codec
from reliq.client import actions, batch, debounce, flowctl, producer, routing
from reliq.client import intake as _intake
from reliq.client import outcome as outcome_path
from reliq.client import schedules as _schedules
from reliq.client.batch import ManyArgs
from reliq.client.cache import LRU
from reliq.client.producer import Options, SendArgs, SendOptions
from reliq.client.schemas import handler_schemas
from reliq.client.waiters import RECHECK, Waiters
from reliq.context import target_of
from reliq.store import counts, registry
from reliq.store import intake as store_intake
from reliq.store.commands import Connection, RedisClient, typed
from reliq.store.counts import QueueCounts
from reliq.store.cron_scripts import CronScripts
from reliq.store.debounce import DebounceScript
from reliq.store.durability import Durability
from reliq.store.flow import FlowSpec
from reliq.store.keys import ServiceKeys, check_name, locate
from reliq.store.layout import Layout, read_layout, write_layout
from reliq.store.record import Accepted
from reliq.store.registry import HandlerEntry, Heartbeat
from reliq.store.scripts import Scripts
from reliq.store.topology import Topology, connect

I = TypeVar("I")  # noqa: E741
LAYOUT_TTL = 2.0  # seconds a service's partition layout is cached by producers


class Client:
    """Talk to reliq through Redis.

    >>> client = Client("redis://127.0.0.1:6379")
    >>> accepted = await client.send("orders", "place", {"order_id": "o1", "amount_cents": 100}, key="o1")
    >>> await client.result(accepted.id, timeout=10)
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis: Connection | None = None,
        retention: timedelta | float = timedelta(hours=24),
        recheck: float = RECHECK,
    ) -> None:
        if redis_url is not None and not isinstance(redis_url, str):
            raise TypeError(f"redis_url must be a str such as 'redis://host:6379/0', not {redis_url!r}")
        if redis is None:
            redis = connect(redis_url or "redis://127.0.0.1:6379/0")
            self._owns = True
        else:
            self._owns = False
        self.redis: RedisClient = typed(redis)
        self.scripts = Scripts(self.redis)
        self.cron_scripts = CronScripts(self.redis)
        self.debounce_script = DebounceScript(self.redis)
        self.retention_ms = int(
            (retention.total_seconds() if isinstance(retention, timedelta) else retention) * 1000
        )
        self.topology = Topology(redis)
        self._keys: LRU[tuple[str, int], ServiceKeys] = LRU()  # bounded: names come from requests
        self._layouts: LRU[str, tuple[float, Layout]] = LRU()
        self._reading: dict[str, asyncio.Future[Layout]] = {}  # layout reads under way
        self.flow_specs: LRU[tuple[str, str], tuple[float, FlowSpec | None]] = LRU()  # routing's cache
        self.recheck = recheck  # seconds: a waiter re-reads at least this often
        self.waiters = Waiters(self.topology)  # Client.wait's table; no connection until one waits
        self.group_read = outcome_path.GroupRead(self)  # Client.wait's reads, grouped

    def keys(self, service: str, partition: int = 0) -> ServiceKeys:
        """Key names of one partition of ``service`` (partition 0 also holds service-wide keys)."""
        k = self._keys.get((service, partition))
        if k is None:
            k = self._keys[(service, partition)] = ServiceKeys(service, partition)
        return k

    def keys_of(self, invocation_id: str) -> ServiceKeys:
        """The keys of the partition an invocation lives in (its id says which)."""
        service, partition, _ = locate(invocation_id)
        return self.keys(service, partition)

    # -- partitions ---------------------------------------------------------------------------
    def cached_layout(self, service: str) -> Layout | None:
        """The service's layout when a read within ``LAYOUT_TTL`` s is cached, without awaiting."""
        hit = self._layouts.get(service)
        return hit[1] if hit is not None and time.monotonic() - hit[0] <= LAYOUT_TTL else None

    async def layout(self, service: str, *, fresh: bool = False) -> Layout:
        """The service's partition layout (cached for ``LAYOUT_TTL`` s)."""
        now = time.monotonic()
        hit = self._layouts.get(service)
        if hit is not None and not fresh and now - hit[0] <= LAYOUT_TTL:
            return hit[1]
        if fresh:
            return await self._read_layout(service)
        # one read per service at a time: the callers arriving meanwhile share it (under load,
        # every concurrent send would otherwise read it, each on a connection of its own)
        reading = self._reading.get(service)
        if reading is None:
            reading = self._reading[service] = asyncio.ensure_future(self._read_layout(service))
            reading.add_done_callback(lambda f: self._read_done(service, f))
        return await asyncio.shield(reading)

    def _read_done(self, service: str, f: asyncio.Future[Layout]) -> None:
        self._reading.pop(service, None)
        if not f.cancelled():
            f.exception()  # marked retrieved: its callers may all be gone (cancelled meanwhile)

    async def _read_layout(self, service: str) -> Layout:
        lay = await read_layout(self.redis, self.keys(service))
        self._layouts[service] = (time.monotonic(), lay)
        return lay

    async def set_partitions(self, service: str, partitions: int) -> Layout:
        """Spread new invocations of ``service`` over ``partitions`` partitions from now on;
        partitions beyond the new count keep being consumed until they drain."""
        check_name("service", service)
        lay = await write_layout(self.scripts, self.keys(service), partitions)
        self._layouts[service] = (time.monotonic(), lay)
        # limits re-split and copied to new partitions at once, whether a worker runs or not
        await store_intake.spread(
            self.redis, [self.keys(service, p) for p in range(lay.high)], lay.partitions
        )
        return lay

    async def partition_keys(self, service: str) -> list[ServiceKeys]:
        """Every partition that may hold work (``0..high-1``)."""
        lay = await self.layout(service)
        return [self.keys(service, p) for p in range(lay.high)]

    # Ids and partitions of new invocations (``reliq.client.routing``: flow keys route by key value).
    route = routing.route
    id_for = routing.id_for
    child_id_for = routing.child_id_for

    async def close(self) -> None:
        await self.waiters.close()
        await self.topology.close()
        if self._owns:
            await self.redis.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- registration -------------------------------------------------------------------------
    @overload
    async def send(
        self,
        service: Callable[[Any, I], Awaitable[Any]] | Callable[[Any, I], Any],
        handler: I,
        /,
        **opts: Unpack[SendArgs],
    ) -> Accepted: ...
    @overload
    async def send(
        self, service: str, handler: str, payload: Any = None, /, **opts: Unpack[SendArgs]
    ) -> Accepted: ...
    async def send(
        self, service: Any, handler: Any, payload: Any = None, /, **opts: Unpack[SendArgs]
    ) -> Accepted:
        """Register an invocation durably; returns its id. ``send("svc", "handler", payload)``, or
        by reference to the handler function, ``send(place, order)`` (mypy checks the payload's
        type). Options: ``key`` (same key + same payload -> same id, ``previously_accepted``;
        same key + different payload raises ``IdempotencyConflict``), ``delay`` or ``at``,
        ``reply_to=("billing", "on_charged")`` (when it finishes, that handler is sent a
        ``reliq.Reply`` with its outcome, once) or ``callback_url=`` (POSTed there, signed:
        ``reliq.client.callbacks``), ``debounce=seconds, debounce_key="k"`` and
        ``mode="throttle"`` (``reliq.client.debounce``: status ``debounced`` names the joined one)."""
        if not isinstance(service, str):
            opts, ref = flowctl.key_option(service, handler, opts), service
            (service, handler), payload = target_of(ref), handler
        return await self.send_json(service, handler, codec.encode(payload), **opts)

    async def send_json(
        self, service: str, handler: str, body: bytes, **options: Unpack[SendOptions]
    ) -> Accepted:
        """Like ``send`` for an already-encoded JSON payload; ``options`` as ``Client.prepare``."""
        check_name("service", service)
        check_name("handler", handler)
        key = options.get("key")
        if key is not None:
            codec.check_key(key)
        if "callback_url" in options:
            options = producer.with_callback(options)
        if {"debounce", "debounce_key", "mode"} & options.keys():
            return await debounce.send(self, service, handler, body, options)
        placed: Options = options
        reg = await self.prepare(service, handler, body, **placed)
        [placed_as] = await self.register_many(self.where(reg.id), [reg])
        return producer.accepted(service, handler, reg.id, placed_as)

    @overload
    async def send_many(
        self,
        service: Callable[[Any, I], Awaitable[Any]] | Callable[[Any, I], Any],
        handler: Iterable[I],
        /,
        **opts: Unpack[ManyArgs],
    ) -> list[Accepted]: ...
    @overload
    async def send_many(
        self, service: str, handler: str, payloads: Iterable[Any], /, **opts: Unpack[ManyArgs]
    ) -> list[Accepted]: ...
    async def send_many(
        self, service: Any, handler: Any, payloads: Any = None, /, **opts: Unpack[ManyArgs]
    ) -> list[Accepted]:
        """Register many invocations of one handler: one script call per partition per chunk of
        500; their ``Accepted`` in input order. ``send_many("svc", "handler", payloads)`` or
        ``send_many(place, orders)`` (mypy checks each payload's type). ``keys=[...]``: one
        idempotency key (or None) per payload, each item idempotent on its own; ``delay``/``at``,
        ``priority``, ``reply_to``/``callback_url`` apply to every item. Bad input raises before
        anything is written. An item refused (``IdempotencyConflict``, ``Backpressure``, ...)
        raises ``reliq.BatchError`` after the others were placed: its ``results`` say, per item,
        ``Accepted`` or why not (``reliq.client.batch``)."""
        return await batch.send_many(self, service, handler, payloads, **opts)

    # The producer path (``reliq.client.producer``): prepare, then register_many, batched by ``where``.
    prepare = producer.prepare
    where = producer.where
    register_many = producer.register_many

    call = outcome_path.call  # send, then wait for the result (``reliq.client.outcome``)

    # -- lookups and the result path (``reliq.client.outcome``) ------------------------------
    get = outcome_path.get
    state = outcome_path.state
    outcome = outcome_path.read
    wait = outcome_path.wait
    result = outcome_path.result

    # -- actions (``reliq.client.actions``): cancel down the tree, promises, redrive -----------
    cancel = actions.cancel
    set_flow_override = flowctl.set_override
    resolve = actions.resolve
    reject = actions.reject
    redrive = actions.redrive
    parked = actions.parked

    set_max_queued = _intake.set_max_queued  # an operator's live override (reliq.client.intake)

    # -- schedules (``reliq.client.schedules``) ------------------------------------------------
    create_schedule = _schedules.create_schedule
    schedules = _schedules.schedules
    pause_schedule = _schedules.pause_schedule
    resume_schedule = _schedules.resume_schedule
    delete_schedule = _schedules.delete_schedule

    # -- what workers registered, and how much work waits --------------------------------------
    async def services(self) -> set[str]:
        """Names of the services workers registered."""
        return await registry.read_services(self.redis)

    async def handlers(self, service: str) -> dict[str, HandlerEntry]:
        """The registry entries of ``service``'s handlers (input schema, limits) by name."""
        return await registry.read_handlers(self.redis, self.keys(service))

    # Which input schemas are in force per handler (``reliq.client.schemas``: live workers' versions).
    handler_schemas = handler_schemas

    async def heartbeats(self, service: str, consumers: Sequence[str]) -> dict[str, Heartbeat | None]:
        """Each consumer's latest heartbeat; None for a dead one."""
        return await registry.read_heartbeats(self.redis, self.keys(service), consumers)

    async def backlog(self, service: str) -> int:
        """Stream entries not yet acked, summed over the service's partitions."""
        return await counts.backlog(self.redis, await self.partition_keys(service))

    async def counts(self, service: str) -> QueueCounts:
        """Backlog, pending, parked and delayed, each summed over the service's partitions."""
        return await counts.counts(self.redis, await self.partition_keys(service))

    async def durability(self) -> Durability:
        """The durability level this server can honestly give (see ``reliq.store.durability``)."""
        return await self.topology.inspect_all()

    async def server_time_ms(self) -> int:
        sec, usec = await self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000
