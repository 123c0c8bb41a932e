"""``SyncClient`` from plain threads: no event loop in sight, one connection pool shared by all
threads, results correct under concurrency, and the Client's other methods forwarded."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reliq import Context, InvocationFailed, Service, SyncClient, Terminal

from .conftest import Names, running

THREADS, PER_THREAD = 8, 125  # 1,000 operations: half sends (then results), half calls


def doubling(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def double(ctx: Context, n: int) -> int:
        return 2 * n

    @svc.handler
    async def level(ctx: Context) -> str:
        return ctx.priority

    @svc.handler(max_attempts=1)
    async def refuse(ctx: Context) -> None:
        raise Terminal("no")

    return svc


def work(client: SyncClient, service: str, thread: int) -> list[tuple[int, int]]:
    """Alternate send (+ result) and call; (expected, got) pairs."""
    assert threading.current_thread() is not threading.main_thread()
    out = []
    for j in range(PER_THREAD):
        n = thread * 1000 + j
        if j % 2:
            accepted = client.send(service, "double", n, key=f"k{n}")
            out.append((2 * n, client.result(accepted.id, timeout=30)))
        else:
            out.append((2 * n, client.call(service, "double", n, timeout=30)))
    return out


async def test_sync_client_from_eight_threads(url: str, names: Names) -> None:
    svc = doubling(names())
    async with running(svc, url, concurrency=200):
        client = await asyncio.to_thread(SyncClient, url)
        try:
            with ThreadPoolExecutor(THREADS) as pool:
                futures = [pool.submit(work, client, svc.name, t) for t in range(THREADS)]
                results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
            pairs = [p for r in results for p in r]
            assert len(pairs) == THREADS * PER_THREAD
            assert all(expected == got for expected, got in pairs)
            # same key, same payload: the same invocation, not a second one
            again = await asyncio.to_thread(client.send, svc.name, "double", 1001, key="k1001")
            assert again.status == "previously_accepted"
            # the status document and the failures come back as from Client
            doc = await asyncio.to_thread(client.get, again.id)
            assert doc is not None and doc.state == "succeeded"
            with pytest.raises(InvocationFailed):
                await asyncio.to_thread(client.call, svc.name, "refuse", None, timeout=10)
            # the priority passes through send and call
            assert await asyncio.to_thread(client.call, svc.name, "level", priority="high") == "high"
            low = await asyncio.to_thread(client.send, svc.name, "level", priority="low")
            assert await asyncio.to_thread(client.result, low.id, timeout=10) == "low"
            # a method without a typed wrapper is forwarded too
            layout = await asyncio.to_thread(lambda: client.layout(svc.name))
            assert layout.partitions == 1
            assert client.keys(svc.name).service == svc.name  # a plain method: no loop needed
        finally:
            await asyncio.to_thread(client.close)
    assert not client._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        client.get(again.id)


def test_sync_client_needs_no_event_loop(url: str, names: Names) -> None:
    """From a plain function (pytest's main thread, no loop running): send, state, cancel."""
    with SyncClient(url) as client:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        accepted = client.send(names(), "later", {"x": 1}, delay=3600)
        assert client.state(accepted.id) == "scheduled"
        assert client.cancel(accepted.id) == "cancelled"
