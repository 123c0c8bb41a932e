"""POST /invocations/{id}/promises/{name}: an operator (or another system) resolves or rejects a
promise a suspended invocation awaits; the answers for every case, the read-token refusal, and
what /metrics and the overview count meanwhile (suspended gauge, resumptions counter)."""

from __future__ import annotations

import re

from reliq import Client, Context, PromiseRejected, Service

from ..conftest import Names, client, running, wait_until
from .conftest import gateway


def approvals(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def approve(ctx: Context, n: int) -> str:
        try:
            return f"{n}: {await ctx.promise('approval')}"
        except PromiseRejected as e:
            return f"{n}: rejected {e}"

    return svc


def metric(text: str, name: str, service: str) -> float:
    m = re.search(rf'^{name}\{{service="{service}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


async def test_resolve_reject_and_every_refusal(url: str, names: Names) -> None:
    svc = approvals(names("appr"))
    s = svc.name
    async with gateway(url, svc) as http, running(svc, url, suspend_after=0.05), client(url) as c:
        ids = [(await c.send(s, "approve", n)).id for n in range(3)]
        for i in ids:
            await wait_until(lambda i=i: _is(c, i, "suspended"), what=f"{i} suspended")

        scrape = (await http.get("/metrics")).text
        assert metric(scrape, "reliq_service_suspended", s) == 3
        resumed_before = metric(scrape, "reliq_service_resumed_total", s)
        card = (await http.get(f"/admin/services/{s}")).json()
        assert card["suspended"] == 3 and card["partitions"][0]["suspended"] == 3

        r = await http.post(f"/invocations/{ids[0]}/promises/approval", json={"value": {"ok": True}})
        assert r.status_code == 200 and r.json() == {"id": ids[0], "promise": "approval", "status": "resumed"}
        assert await c.result(ids[0], 10) == "0: {'ok': True}"
        r = await http.post(f"/invocations/{ids[1]}/promises/approval", json={"error": "no budget"})
        assert r.json()["status"] == "resumed"
        assert await c.result(ids[1], 10) == "1: rejected promise 'approval' rejected: no budget"

        # a finished invocation takes no value; unknown is 404
        late = await http.post(f"/invocations/{ids[0]}/promises/other", json={"value": 1})
        assert late.status_code == 409 and late.headers["content-type"] == "application/problem+json"
        unknown = await http.post(f"/invocations/{s}.{'a' * 26}/promises/approval", json={"value": 1})
        assert unknown.status_code == 404

        # a promise resolved before the handler awaits it is stored, then found
        early = (await c.send(s, "approve", 9, delay=3600)).id
        r = await http.post(f"/invocations/{early}/promises/approval", json={"value": "early"})
        assert r.json()["status"] == "stored"
        again = await http.post(f"/invocations/{early}/promises/approval", json={"error": "too late"})
        assert again.status_code == 409 and "first value stands" in again.json()["detail"]

        scrape = (await http.get("/metrics")).text
        assert metric(scrape, "reliq_service_suspended", s) == 1
        assert metric(scrape, "reliq_service_resumed_total", s) == resumed_before + 2
        minutes = (await http.get(f"/admin/services/{s}")).json()["minutes"]
        assert sum(m["resumed"] for m in minutes) >= 2

        async with gateway(url, svc, tokens=("viewer:r3ad:read",)) as guarded:
            r = await guarded.post(
                f"/invocations/{ids[2]}/promises/approval",
                json={"value": 1},
                headers={"authorization": "Bearer r3ad"},
            )
            assert r.status_code == 403
        assert await c.state(ids[2]) == "suspended"
        await c.cancel(ids[2])
        await c.cancel(early)


async def _is(c: Client, i: str, state: str) -> bool:
    return await c.state(i) == state


async def test_bad_bodies_are_refused(url: str, names: Names) -> None:
    svc = approvals(names("apprb"))
    async with gateway(url, svc) as http, client(url) as c:
        inv = (await c.send(svc.name, "approve", 1, delay=3600)).id
        path = f"/invocations/{inv}/promises/approval"
        cases: list[tuple[str, dict[str, object], int]] = [
            (path, {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
            (path, {"json": {"value": 1, "error": "x"}}, 400),
            (path, {"json": {}}, 400),
            (path, {"json": [1]}, 400),
            (path, {"json": {"error": 5}}, 400),
            (path, {"json": {"error": ""}}, 400),
            (path, {"json": {"valu": 1}}, 400),
            (path, {"content": b"value=1", "headers": {"content-type": "text/plain"}}, 415),
            (f"/invocations/{inv}/promises/Bad%20Name", {"json": {"value": 1}}, 400),
            ("/invocations/nonsense/promises/approval", {"json": {"value": 1}}, 400),
        ]
        for p, kwargs, status in cases:
            r = await http.post(p, **kwargs)  # type: ignore[arg-type]
            assert r.status_code == status, (p, kwargs, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        assert not await c.redis.exists(c.keys_of(inv).inbox(inv))  # nothing was stored
        await c.cancel(inv)
