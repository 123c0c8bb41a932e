"""What the dashboard reads besides the views: the server's time (``now``) in the invocation and
audit answers and the schedules listing's ``Reliq-Now`` header (the page computes "ago" and "in"
with it, not with the browser's clock), ``children_total`` when the invocation page's tree is cut
at 200, and ``GET /admin/whoami`` (the caller's scope: a read token sees no action buttons)."""

from __future__ import annotations

from reliq import Client, Context, Service
from reliq.store.ids import new_id

from ..conftest import Names
from ..gateway.conftest import gateway
from .conftest import ok
from .test_api_safety import OPS, PLAIN, TOKENS, VIEWER


async def test_detail_audit_and_schedules_answer_the_server_time(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        return n

    async with Client(url) as c, gateway(url, app=svc) as http:
        await c.redis.sadd("reliq:services", svc.name)
        acc = await c.send(svc.name, "job", 1)
        ok(await http.post(f"/admin/invocations/{acc.id}/cancel"))
        new = {"name": "s", "handler": "job", "every": 60, "payload": 1}
        assert (await http.post(f"/admin/services/{svc.name}/schedules", json=new)).status_code == 201
        before = await c.server_time_ms()
        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        log = ok(await http.get("/admin/audit", params={"service": svc.name}))
        listing = await http.get(f"/admin/services/{svc.name}/schedules")
        after = await c.server_time_ms()
        assert before <= doc["now"] <= after
        assert before <= log["now"] <= after and [e["action"] for e in log["items"]] == ["cancel"]
        assert [i["schedule"]["name"] for i in listing.json()] == ["s"]  # still a bare list
        assert before <= int(listing.headers["Reliq-Now"]) <= after
        await c.redis.srem("reliq:services", svc.name)


async def test_the_detail_counts_every_child_when_it_lists_the_first_200(url: str, names: Names) -> None:
    svc = names()
    async with Client(url) as c, gateway(url) as http:
        acc = await c.send(svc, "job", 1, delay=3600)
        kids = {new_id(svc): n for n in range(205)}
        await c.redis.zadd(c.keys_of(acc.id).children(acc.id), kids)
        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        assert len(doc["children"]) == 200 and doc["children_total"] == 205


async def test_whoami_says_the_callers_scope(url: str) -> None:
    async with gateway(url) as http:  # open: everyone may act
        assert ok(await http.get("/admin/whoami")) == {"name": "anonymous", "scope": "operator"}
    async with gateway(url, tokens=TOKENS) as http:
        assert (await http.get("/admin/whoami")).status_code == 401
        assert ok(await http.get("/admin/whoami", headers=VIEWER)) == {"name": "viewer", "scope": "read"}
        assert ok(await http.get("/admin/whoami", headers=OPS)) == {"name": "ops", "scope": "operator"}
        assert ok(await http.get("/admin/whoami", headers=PLAIN))["scope"] == "operator"
