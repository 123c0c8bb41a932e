"""The worker wires the loops together; each loop lives in its own module: per partition
consume (read + claim) -> execute -> settle, reclaim, reap and schedule; per process the
settler's flush, lease renewal, the cancel listener and the heartbeat. Also startup (waiting
for Redis) and the graceful shutdown (grace, cancel, drain, release)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis

from reliq.backoff import Backoff
from reliq.client import Client
from reliq.client.callbacks import CallbackSettings
from reliq.errors import TRANSIENT
from reliq.service import App, Service
from reliq.store.durability import Durability
from reliq.store.keys import RELEASE_IDLE_MS, ServiceKeys
from reliq.worker.adapt import Adaptive
from reliq.worker.callbacks import with_callbacks
from reliq.worker.cancels import cancel_for_exit, cancel_listener
from reliq.worker.config import WorkerConfig, default_consumer
from reliq.worker.consume import Traffic, ensure_group, follow_loop, read_loop
from reliq.worker.cron import publish_schedules, tick_loop
from reliq.worker.execute import Executor
from reliq.worker.heartbeat import clear_heartbeat, heartbeat_loop
from reliq.worker.inflight import Runtime
from reliq.worker.leases import renew_loop
from reliq.worker.limits import Limiter
from reliq.worker.reap import reap_loop
from reliq.worker.reclaim import reclaim_loop
from reliq.worker.registry import publish_intake, publish_registry
from reliq.worker.relay import relay_loop
from reliq.worker.schedule import promote_loop
from reliq.worker.settle import Settler

log = logging.getLogger("reliq.worker.run")


class Worker:
    """Runs the handlers of an App until stopped.

    >>> worker = Worker(app, "redis://127.0.0.1:6379", config=WorkerConfig(concurrency=50))
    >>> await worker.run()        # until worker.stop() or SIGTERM (via run_worker)
    """

    def __init__(
        self,
        app: App | Service,
        redis_url: str | None = None,
        *,
        redis: Redis | None = None,
        config: WorkerConfig | None = None,
    ) -> None:
        self.config = config or WorkerConfig()
        self.app = with_callbacks(App.of(app), self.config.callbacks or CallbackSettings.from_env())
        self.client = Client(redis_url, redis=redis, retention=self.config.retention)
        cfg = self.config
        adapt = Adaptive.of(cfg)  # None with a fixed concurrency
        self.rt = Runtime(
            app=self.app,
            client=self.client,
            config=cfg,
            consumer=cfg.consumer or default_consumer(),
            limiter=Limiter(adapt.limit if adapt is not None else cfg.concurrency or 1),
            adapt=adapt,
        )
        self.settler = Settler(self.rt)
        self.executor = Executor(self.rt, self.settler)
        self.started = asyncio.Event()

    @property
    def consumer(self) -> str:
        return self.rt.consumer

    def stop(self) -> None:
        """Begin a graceful shutdown: stop reading, let in-flight handlers finish within the grace."""
        self.rt.stop()

    async def run(self) -> None:
        rt = self.rt
        connected = await self._connect()
        if connected is None:  # stopped before Redis ever answered
            self.executor.close()
            await self.client.close()
            return
        durability, services = connected
        on = sorted(f"{k.service}/{k.partition}" for k in services)
        notes = "".join(f"; {n}" for n in durability.notes)
        log.info("worker %s on %s; durability %s%s", rt.consumer, on, durability.level, notes)
        if not on:
            log.warning("--partitions names no partition there is: nothing to consume until one is added")
        grown: asyncio.Queue[list[ServiceKeys]] = asyncio.Queue()
        support: list[Coroutine[Any, Any, None]] = [
            self.settler.run(),
            renew_loop(rt),
            cancel_listener(rt, services),
            heartbeat_loop(rt),
            self._watch_layouts(services, grown),
            relay_loop(rt, services),
            *(tick_loop(rt, self.client.keys(name)) for name in self.app.services),
        ]
        bg = [_task(c) for c in support]
        feed = [_task(c) for k in services for c in self._feeders(k)]
        self.started.set()
        stop_wait = asyncio.create_task(rt.stopping.wait())
        more = asyncio.create_task(grown.get())
        failure: BaseException | None = None
        try:
            while True:
                done, _ = await asyncio.wait(
                    [stop_wait, more, *bg, *feed], return_when=asyncio.FIRST_COMPLETED
                )
                if done == {more}:  # partitions were added to a service: consume them too
                    feed += [_task(c) for k in more.result() for c in self._feeders(k)]
                    services.extend(more.result())  # the relay sweeps them too
                    more = asyncio.create_task(grown.get())
                    continue
                for t in done:
                    if t not in (stop_wait, more) and not t.cancelled() and t.exception() is not None:
                        failure = t.exception()
                        log.error("worker loop failed: %r", failure)
                break
            self.stop()
            await self._shutdown(feed)
        finally:
            await cancel_bounded([stop_wait, more, *bg, *feed])
            with contextlib.suppress(Exception):
                await clear_heartbeat(rt)
            self.executor.close()
            await self.client.close()
        if failure is not None:
            raise failure

    async def _connect(self) -> tuple[Durability, list[ServiceKeys]] | None:
        """Publish partition layouts, create the groups of the partitions to consume, publish the
        registry and read the server's durability, waiting (with backoff, up to 5 s between tries)
        for Redis to become reachable instead of exiting."""
        pauses = Backoff(first=0.1, cap=5.0)
        said = False
        while not self.rt.stopping.is_set():
            try:
                services = await self._partitions()
                for k in services:
                    await ensure_group(self.rt, k)
                await publish_registry(self.rt)
                await publish_schedules(self.rt)
                return await self.client.durability(), services
            except TRANSIENT as e:
                pause = pauses.next()
                if not said:  # once, not every retry: the worker keeps waiting, quietly
                    said = True
                    log.warning("redis not reachable (%s); waiting for it (retrying up to every 5 s)", e)
                else:
                    log.debug("redis not reachable yet (%s); retrying in %.1f s", type(e).__name__, pause)
                await self.rt.sleep(pause)
        return None

    def _feeders(self, k: ServiceKeys) -> list[Coroutine[Any, Any, None]]:
        """The loops that feed one partition to the executor."""
        rt, traffic = self.rt, Traffic()
        return [
            read_loop(rt, self.executor, k, traffic),
            *(follow_loop(rt, self.executor, k, traffic) for _ in range(rt.config.readers - 1)),
            reclaim_loop(rt, self.executor, k),
            reap_loop(rt, k),
            promote_loop(rt, k),
        ]

    async def _watch_layouts(
        self, consumed: list[ServiceKeys], grown: asyncio.Queue[list[ServiceKeys]]
    ) -> None:
        """Pick up partitions added to a service while this worker runs (``reliq partitions S N``
        or another deployment's ``Service(partitions=N)``), so growing P needs no restart."""
        known = {(k.service, k.partition) for k in consumed}
        counts = {name: (await self.client.layout(name)).partitions for name in self.app.services}
        wanted = self.rt.config.partitions
        while True:
            await asyncio.sleep(self.rt.config.layout_interval)
            try:
                new: list[ServiceKeys] = []
                for name, svc in self.app.services.items():
                    lay = await self.client.layout(name, fresh=True)
                    if lay.partitions != counts[name]:  # limits re-split, new partitions prioritise
                        await publish_intake(self.rt, svc)
                        counts[name] = lay.partitions
                    for k in await self.client.partition_keys(name):
                        if (name, k.partition) not in known and (wanted is None or k.partition in wanted):
                            await ensure_group(self.rt, k)
                            known.add((name, k.partition))
                            new.append(k)
                if new:
                    log.info("consuming new partitions %s", sorted(f"{k.service}/{k.partition}" for k in new))
                    grown.put_nowait(new)
            except TRANSIENT as e:
                log.warning("layout check failed: %s", e)

    async def _partitions(self) -> list[ServiceKeys]:
        """The partitions this worker consumes: every partition that may hold work
        (``0..high-1`` of the layout), or the subset ``config.partitions``."""
        wanted = self.rt.config.partitions
        out: list[ServiceKeys] = []
        for name, svc in self.app.services.items():
            if svc.partitions is not None:
                await self.client.set_partitions(name, svc.partitions)
            for k in await self.client.partition_keys(name):
                if wanted is None or k.partition in wanted:
                    out.append(k)
        return out

    async def _shutdown(self, feeders: list[asyncio.Task[None]]) -> None:
        rt = self.rt
        if feeders:  # none: --partitions named no partition there is (yet)
            await asyncio.wait(feeders, timeout=rt.config.block + 1)
        for t in feeders:
            t.cancel()
        tasks = [f.task for f in rt.inflight.values() if f.task is not None]
        if tasks:
            log.info("waiting up to %.0f s for %d handlers", rt.config.shutdown_grace, len(tasks))
            await asyncio.wait(tasks, timeout=rt.config.shutdown_grace)
        left = list(rt.inflight.values())
        await cancel_for_exit(left)
        try:
            await asyncio.wait_for(self.settler.drain(), rt.config.shutdown_grace + 5)
        except TimeoutError:
            log.error(
                "could not write every outcome before shutdown; those entries stay pending "
                "and will be reclaimed (their handlers may run again)"
            )
        by_partition: dict[str, tuple[ServiceKeys, list[tuple[str, str, int]]]] = {}
        for f in left:  # one call per partition and priority level (stream)
            by_partition.setdefault(f.keys.stream, (f.keys, []))[1].append((f.id, f.entry, f.epoch))
        for k, items in by_partition.values():
            n = await self.client.scripts.release(k, rt.consumer, RELEASE_IDLE_MS, items)
            if n:
                log.warning("released %d unfinished invocations of %s for other workers", n, k.prefix)


def _task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coro, name=getattr(coro, "__qualname__", None))


async def cancel_bounded(tasks: list[asyncio.Task[Any]], timeout: float = 10.0) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again while any is left, for at most
    ``timeout`` s: redis-py can swallow a CancelledError inside a command (redis-py#2028), and one
    swallowed cancellation must not keep a worker from exiting."""
    deadline = time.monotonic() + timeout
    left = [t for t in tasks if not t.done()]
    while left:
        for t in left:
            t.cancel()
        _, pending = await asyncio.wait(left, timeout=0.5)
        left = list(pending)
        if left and time.monotonic() > deadline:
            log.error("exiting without %s: they ignored cancellation", [t.get_name() for t in left])
            return
    for t in tasks:
        if not t.cancelled():
            t.exception()  # retrieved (each was logged where it mattered)


def run_worker(app: App | Service, redis_url: str, config: WorkerConfig) -> None:
    """Run a worker in this process until SIGTERM/SIGINT (the CLI's entry point)."""

    async def main() -> None:
        worker = Worker(app, redis_url, config=config)
        # what is loaded by now (the app, reliq, redis-py, OpenTelemetry) lives as long as the
        # process: frozen, it is left out of every later collection, whose full passes walked it
        # all during a drain. A batch in flight holds more new objects than generation 0's
        # default threshold (700), which ran a collection per batch: the threshold is 10x that
        # (measured: load_tests/instructions_per_task.py; the work makes no cycles per task)
        gc.collect()
        gc.freeze()
        gc.set_threshold(7000, 10, 10)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())
