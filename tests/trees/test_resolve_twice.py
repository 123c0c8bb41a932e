"""Resolving a promise is idempotent for its caller: a second resolve (a retry whose first
attempt landed but whose reply was lost) is refused with ``PromiseAlreadySettled``, also once
the invocation has finished using the value. Found by the chaos harness's tree workload, whose
client resolves every parent's promise twice."""

from __future__ import annotations

import pytest

from reliq import Context, InvocationFailed, PromiseAlreadySettled, Service

from ..conftest import Names, client, running


async def test_a_second_resolve_after_the_invocation_finished_is_already_settled(
    url: str, names: Names
) -> None:
    svc = Service(names("twice"))

    @svc.handler
    async def approve(ctx: Context) -> str:
        return f"got {await ctx.promise('go')}"

    @svc.handler
    async def plain(ctx: Context) -> str:
        return "done"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "approve")
        assert await c.resolve(acc.id, "go", "yes") in ("resumed", "stored")
        assert await c.result(acc.id, 20) == "got yes"
        with pytest.raises(PromiseAlreadySettled):  # the value was there, and it was used
            await c.resolve(acc.id, "go", "again")
        with pytest.raises(PromiseAlreadySettled):
            await c.reject(acc.id, "go", "too late")
        # a promise nobody resolved before the invocation finished: it is over
        with pytest.raises(InvocationFailed) as finished:
            await c.resolve(acc.id, "other", 1)
        assert finished.value.state == "succeeded" and not isinstance(finished.value, PromiseAlreadySettled)
        done = await c.send(svc.name, "plain")
        assert await c.result(done.id, 20) == "done"
        with pytest.raises(InvocationFailed):
            await c.resolve(done.id, "go", "yes")
