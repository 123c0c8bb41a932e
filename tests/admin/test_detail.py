"""GET /admin/invocations/{id}: the function tree (parent and children with their states, each
an id to follow) and the input/result of each."""

from __future__ import annotations

from reliq import Context, Service

from ..conftest import Names, client, running
from ..gateway.conftest import gateway
from .conftest import ok


async def test_the_detail_shows_children_with_states_and_the_parent(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def order(ctx: Context, n: int) -> int:
        await ctx.call(svc.name, "pack", n)
        await ctx.send(svc.name, "bill", n)
        return n

    @svc.handler
    async def pack(ctx: Context, n: int) -> int:
        return n * 2

    @svc.handler
    async def bill(ctx: Context, n: int) -> int:
        return n * 3

    async with running(svc, url), client(url) as c, gateway(url) as http:
        acc = await c.send(svc.name, "order", 5)
        assert await c.result(acc.id, 10) == 5
        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        assert doc["invocation"]["payload"] == 5 and doc["invocation"]["result"] == 5
        assert doc["parent"] is None
        kids = doc["children"]
        assert [(k["service"], k["handler"]) for k in kids] == [(svc.name, "pack"), (svc.name, "bill")]
        assert kids[0]["state"] == "succeeded"  # called: finished before the parent went on
        assert await c.result(kids[1]["id"], 10) == 15
        child = ok(await http.get(f"/admin/invocations/{kids[0]['id']}"))
        parent = {"id": acc.id, "service": svc.name, "handler": "order", "state": "succeeded"}
        assert child["parent"] == parent
        assert child["invocation"]["result"] == 10 and child["children"] == []
