"""settle: the only writer of outcomes, with bounded patience: a write that keeps failing is
given up after ``settle_patience``, its bookkeeping dropped and its entry left pending, so that
reclaim runs the invocation again (the scripts are idempotent and fenced)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Context, InvocationFailed, Service, Terminal
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.scripts import Scripts

from ..conftest import Names, client, running, wait_until


@pytest.mark.parametrize("script", ["complete", "park"])
async def test_a_write_that_keeps_failing_is_given_up_and_the_entry_is_run_again(
    url: str, names: Names, script: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = Service(names())
    runs: list[int] = []

    @svc.handler
    async def job(ctx: Context) -> str:
        runs.append(ctx.attempt)
        if script == "park":
            raise Terminal("no", status=409)
        return "done"

    k = ServiceKeys(svc.name)
    calls: list[float] = []

    async def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        raise RedisConnectionError("injected")

    cfg = {"settle_patience": 0.4, "visibility_timeout": 1.0, "reclaim_interval": 0.1}
    async with client(url) as c, running(svc, url, **cfg) as w:
        real = getattr(w.client.scripts, script)
        setattr(w.client.scripts, script, failing)
        acc = await c.send(svc.name, "job")
        with caplog.at_level(logging.ERROR, logger="reliq.worker.settle"):
            await wait_until(lambda: w.settler.given_up == 1, what="the settler to give up")
        assert 0.4 <= calls[-1] - calls[0] < 2.0 and len(calls) < 20  # bounded, and not a hot loop
        assert any("gave up writing the outcome" in r.getMessage() for r in caplog.records)
        assert not w.rt.holds(acc.id)  # local bookkeeping dropped
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running"  # nothing written
        assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 1  # left for reclaim
        setattr(w.client.scripts, script, real)
        if script == "complete":
            assert await c.result(acc.id, 15) == "done"
        else:
            with pytest.raises(InvocationFailed):
                await c.result(acc.id, 15)
    assert len(runs) == 2  # reclaimed and run again


async def test_completions_are_flushed_in_one_script_call_per_partition(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = Service(names(), partitions=2)

    @svc.handler
    async def job(ctx: Context) -> int:
        return 1

    calls: list[tuple[int, int]] = []
    real = Scripts.complete

    async def counting(self: Scripts, k: ServiceKeys, retention_ms: int, items: Any) -> list[str]:
        calls.append((k.partition, len(items)))
        return await real(self, k, retention_ms, items)

    monkeypatch.setattr(Scripts, "complete", counting)
    async with client(url) as c:
        await c.set_partitions(svc.name, 2)
        ids = [(await c.send(svc.name, "job")).id for _ in range(60)]
        async with running(svc, url):
            for i in ids:
                assert await c.result(i, 15) == 1
    assert sum(n for _, n in calls) == 60
    assert len(calls) < 30  # batched: many completions per call
    assert {p for p, _ in calls} == {0, 1}
