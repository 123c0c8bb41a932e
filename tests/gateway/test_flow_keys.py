"""A send whose flow key (concurrency_key) is missing or not a string/integer: 422 problem+json
at /send and /call, with and without the code (--app), and nothing written (issue 14)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from reliq import Context, Service

from ..conftest import Names, client, running
from .conftest import gateway
from .test_write_routes_4xx import keyspace


class Acct(msgspec.Struct):
    account: Any = None  # the schema lets anything through: register.lua refuses


async def _ours(url: str, service: str) -> dict[bytes, tuple[bytes, int]]:
    return {k: v for k, v in (await keyspace(url)).items() if service.encode() in k}


@pytest.mark.parametrize("with_app", [False, True])
async def test_a_bad_flow_key_is_422_and_writes_nothing(url: str, names: Names, with_app: bool) -> None:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with running(svc, url):  # publishes the spec
        pass
    async with gateway(url, svc if with_app else None) as http, client(url) as c:
        before = await _ours(url, svc.name)
        for route in ("send", "call"):
            for body in ({}, {"account": None}, {"account": 1.5}):
                r = await http.post(f"/{route}/{svc.name}/work", json=body)
                assert r.status_code == 422, (route, body, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert "flow key" in r.json()["detail"]
        assert await _ours(url, svc.name) == before  # nothing of this service was written
        ok = await http.post(f"/send/{svc.name}/work", json={"account": 3})
        assert ok.status_code == 202, ok.text
        await c.cancel(ok.json()["id"])


class Order(msgspec.Struct):
    account: str
    n: int = 0


def _callable_svc(name: str) -> Service:
    svc = Service(name)

    def key(o: Order) -> str:
        if o.account == "boom":
            raise RuntimeError("no key for boom")
        return o.account.upper()

    @svc.handler(concurrency_key=key, concurrency_limit=1)
    async def work(ctx: Context, req: Order) -> None: ...

    return svc


async def test_a_callable_key_is_computed_by_a_gateway_with_the_app(url: str, names: Names) -> None:
    svc = _callable_svc(names())
    async with running(svc, url):  # publishes the spec (key "()": a callable)
        pass
    async with gateway(url, svc) as http, client(url) as c:
        ok = await http.post(f"/send/{svc.name}/work", json={"account": "a"})
        assert ok.status_code == 202, ok.text
        assert await c.redis.hget(c.keys_of(ok.json()["id"]).inv(ok.json()["id"]), "fk") == b"work\0A"
        before = await _ours(url, svc.name)
        bad = await http.post(f"/send/{svc.name}/work", json={"account": "boom"})
        assert bad.status_code == 422 and "flow key" in bad.json()["detail"], bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        assert await _ours(url, svc.name) == before  # nothing written
        await c.cancel(ok.json()["id"])
    async with gateway(url) as http:  # without the code the key cannot be computed: 422
        r = await http.post(f"/send/{svc.name}/work", json={"account": "a"})
        assert r.status_code == 422 and "flow key" in r.json()["detail"], r.text


async def test_client_send_and_call_by_reference_compute_a_callable_key(url: str, names: Names) -> None:
    svc = _callable_svc(names())
    work = svc.handlers["work"].fn
    async with running(svc, url), client(url) as c:
        sent = await c.send(work, Order(account="b"))
        assert await c.redis.hget(c.keys_of(sent.id).inv(sent.id), "fk") == b"work\0B"
        assert await c.call(work, Order(account="c"), timeout=10) is None
        with pytest.raises(ValueError, match="flow key"):
            await c.send(svc.name, "work", {"account": "d"})  # by name: no code, no key value
        await c.result(sent.id, timeout=10)
