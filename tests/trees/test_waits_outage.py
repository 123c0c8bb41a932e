"""A durable await that waits in memory outlives a Redis outage: the attempt's watcher (which
re-reads what the handler waits for) retries instead of dying, so the handler is answered once
Redis is back. Found by the chaos harness's tree workload under kill-valkey: a parent whose
watcher died waited forever, its lease renewed, the invocation ``running`` for good."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Context, Service
from reliq.devserver.embedded import EmbeddedValkey

from ..conftest import Names, client, running, wait_until


async def test_an_in_memory_wait_outlives_a_server_restart(tmp_path: Path, names: Names) -> None:
    server = EmbeddedValkey(data_dir=tmp_path).start()
    svc = Service(names("outage"))

    @svc.handler(suspend_after=60.0)  # wait in memory for the whole test: no suspension
    async def approve(ctx: Context) -> str:
        return f"got {await ctx.promise('go')}"

    try:
        # no reclaim during the outage: only the first attempt's watcher can answer the handler
        async with running(svc, server.url, visibility_timeout=60.0) as w, client(server.url) as c:
            acc = await c.send(svc.name, "approve")

            def waiting_in_memory() -> bool:
                # not an event set by the handler before ``ctx.promise``: the promise reads the
                # journal and the inbox first, and a kill before those reads fails the attempt
                # (a plain retry: a second delivery), which is not what this test is about
                f = w.rt.inflight.get(acc.id)
                return f is not None and f.waits is not None and bool(f.waits.pending)

            await wait_until(waiting_in_memory, what="the handler to wait in memory for its promise")
            server.kill()
            await asyncio.sleep(4.0)  # the outage: longer than a re-read pause plus redis-py's re-sends
            server.start()

            async def resolved() -> bool:
                try:
                    await c.resolve(acc.id, "go", "yes")
                except RedisConnectionError:
                    return False
                return True

            await wait_until(resolved, what="the server to come back")

            async def finished() -> bool:
                try:
                    return await c.state(acc.id) == "succeeded"
                except RedisConnectionError:
                    return False

            await wait_until(finished, timeout=15, what="the handler to see its promise")
            assert await c.result(acc.id) == "got yes"
            doc = await c.get(acc.id)
            assert doc is not None and doc.deliveries == 1 and doc.suspensions == 0
    finally:
        server.stop()
