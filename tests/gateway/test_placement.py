"""The gateway's group commit (``gateway.placement.Placer``) against a real Valkey: two flushes of
one partition under way at once, the requests that arrive meanwhile placed together by the next."""

from __future__ import annotations

import asyncio

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


async def test_a_second_flush_is_written_while_the_first_awaits_its_reply_and_a_third_waits(
    url: str, names: Names
) -> None:
    svc = names()
    async with client(url) as c:
        placer = Held(c)

        def send(i: int) -> asyncio.Task[Accepted]:
            return asyncio.create_task(placer.place(svc, "h", b"null", key=f"k{i}", delay=None, at=None))

        first = [send(0)]
        await wait_until(lambda: placer.under_way == 1, what="the first flush under way")
        first.append(send(1))  # arrives while the first flush awaits its reply: a second flush
        await wait_until(lambda: placer.under_way == 2, what="a second flush under way")
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
