"""The gateway's group commit (``gateway.placement.Placer``) against a real Valkey: two flushes of
one partition under way at once, the requests that arrive meanwhile placed together by the next."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.placement import Placer
from reliq import Accepted, Client
from reliq.client.producer import Where
from reliq.store.scripts import Registered, Registration

from ..conftest import Names, client, wait_until


class Held(Placer):
    """A Placer whose script calls wait for ``go``; counts the calls under way."""

    def __init__(self, c: Client) -> None:
        super().__init__(c, replicas=0, wait_ms=1000)
        self.go = asyncio.Event()
        self.under_way = self.most = 0
        self.sizes: list[int] = []

    async def _commit(self, where: Where, items: list[Registration]) -> list[Registered]:
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        self.sizes.append(len(items))
        try:
            await self.go.wait()
            return await super()._commit(where, items)
        finally:
            self.under_way -= 1


def sender(placer: Placer, svc: str) -> Callable[[int], asyncio.Task[Accepted]]:
    """Place the i-th request (key ``k<i>``) of service ``svc`` through ``placer``, as a task."""

    def send(i: int) -> asyncio.Task[Accepted]:
        return asyncio.create_task(placer.place(svc, "h", b"null", key=f"k{i}", delay=None, at=None))

    return send


async def two_under_way(
    placer: Held, send: Callable[[int], asyncio.Task[Accepted]]
) -> list[asyncio.Task[Accepted]]:
    """Requests 0 and 1, the second sent while the first one's flush awaits its reply: two flushes
    under way, both held."""
    first = [send(0)]
    await wait_until(lambda: placer.under_way == 1, what="the first flush under way")
    first.append(send(1))
    await wait_until(lambda: placer.under_way == 2, what="a second flush under way")
    return first


async def test_a_second_flush_is_written_while_the_first_awaits_its_reply_and_a_third_waits(
    url: str, names: Names
) -> None:
    svc = names()
    async with client(url) as c:
        placer = Held(c)
        send = sender(placer, svc)
        first = await two_under_way(placer, send)
        rest = [send(i) for i in range(2, 7)]
        for _ in range(20):  # nothing more starts while two are under way
            await asyncio.sleep(0)
        assert placer.sizes == [1, 1] and placer.most == 2
        placer.go.set()
        answers = await asyncio.gather(*first, *rest)
        assert [a.status for a in answers] == ["accepted"] * 7
        assert placer.sizes == [1, 1, 5]  # the five that waited went in one script call
        assert placer.most == 2 and placer.flushes == 3 and placer.placed == 7
        assert await c.redis.xlen(c.keys(svc).stream) == 7
        for a in answers:
            await c.cancel(a.id)


async def test_requests_queued_behind_cancelled_flushes_are_placed_by_the_next_one(
    url: str, names: Names
) -> None:
    """A shutdown cancels the flushes under way; the requests queued behind them must not wait
    for a flush that will never come: the next request starts one for the whole queue."""
    svc = names()
    async with client(url) as c:
        placer = Held(c)
        send = sender(placer, svc)
        cut = await two_under_way(placer, send)
        queued = [send(2), send(3)]
        await wait_until(lambda: len(placer._queues[(svc, 0)]) == 2, what="two requests queued")
        for task in list(placer._tasks):
            task.cancel()
        failed = await asyncio.gather(*cut, return_exceptions=True)
        assert all(isinstance(e, Exception) for e in failed)  # told "not confirmed, retry"
        placer.go.set()
        late = send(4)
        answers = await asyncio.wait_for(asyncio.gather(*queued, late), 15)
        assert [a.status for a in answers] == ["accepted"] * 3
        assert placer.sizes[-1] == 3  # the two left behind and the new one, in one call
        for a in answers:
            await c.cancel(a.id)
