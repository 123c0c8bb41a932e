"""The gateway's Priority header and its 429 past max_queued (RELIQ_MAX_QUEUED for a service that
set none): a refused or malformed request leaves no record and no stream entry."""

from __future__ import annotations

from reliq import Context, Service
from tests.conftest import Names, client
from tests.gateway.conftest import gateway


def noop_service(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def noop(ctx: Context) -> None: ...

    return svc


async def test_priority_header_routes_and_bad_values_place_nothing(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc) as http, client(url) as c:
        k = c.keys(svc.name)
        bad = await http.post(f"/send/{svc.name}/noop", headers={"Priority": "urgent"})
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        assert not await c.redis.exists(*k.streams)
        browser = await http.post(f"/send/{svc.name}/noop", headers={"Priority": "u=1, i"})  # RFC 9218
        high = await http.post(f"/send/{svc.name}/noop", headers={"Priority": "high"})
        assert (browser.status_code, high.status_code) == (202, 202)
        assert [await c.redis.xlen(s) for s in k.streams] == [1, 1, 0]  # normal, high, low
        for r in (browser, high):
            await http.post(f"/invocations/{r.json()['id']}/cancel")


async def test_send_and_call_past_max_queued_answer_429_and_place_nothing(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc, max_queued=2) as http, client(url) as c:
        ids = [(await http.post(f"/send/{svc.name}/noop")).json()["id"] for _ in range(2)]
        for verb in ("send", "call"):
            r = await http.post(f"/{verb}/{svc.name}/noop", headers={"Idempotency-Key": f"over-{verb}"})
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert r.headers["content-type"] == "application/problem+json"
            assert not await c.redis.exists(c.keys(svc.name).inv(await c.id_for(svc.name, f"over-{verb}")))
        assert sum([await c.redis.xlen(s) for s in c.keys(svc.name).streams]) == 2
        for i in ids:
            await http.post(f"/invocations/{i}/cancel")
