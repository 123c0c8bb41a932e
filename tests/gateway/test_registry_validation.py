"""A gateway without the workers' code (no ``--app``) validates bodies against the schemas the
workers publish: the bad-input set of test_ingress answers the same 4xx problem+json and places
nothing, a schema a new worker publishes is picked up within the catalog's cache period, and
during a rolling deploy a body valid under either live version is accepted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from gateway.catalog import CACHE_SECONDS, REFRESH_AFTER, Catalog
from reliq import Client, Context, Service
from reliq.store.record import TERMINAL

from ..conftest import Names, client, running, sync_client, wait_until
from .conftest import gateway


class Line(msgspec.Struct, forbid_unknown_fields=True):
    sku: str
    qty: int


class Order(msgspec.Struct, forbid_unknown_fields=True):
    order_id: str
    amount_cents: int
    lines: list[Line] = []


def shop(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def place(ctx: Context, req: Order) -> int:
        return req.amount_cents

    return svc


JSON = {"content-type": "application/json"}
BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("type mismatch", {"json": {"order_id": 1, "amount_cents": 5}}, 422, "$.order_id"),
    (
        "nested type mismatch",
        {"json": {"order_id": "o", "amount_cents": 5, "lines": [{"sku": 1}]}},
        422,
        "$.lines[0]",
    ),
    ("missing field", {"json": {"order_id": "x"}}, 422, "amount_cents"),
    ("extra field", {"json": {"order_id": "x", "amount_cents": 1, "coupon": "free"}}, 422, "coupon"),
    ("NaN", {"content": b'{"order_id": "x", "amount_cents": NaN}'}, 400, ""),
    ("Infinity", {"content": b'{"order_id": "x", "amount_cents": Infinity}'}, 400, ""),
    ("deep nesting", {"content": b"[" * 100_000 + b"]" * 100_000}, 400, ""),
    ("huge int", {"content": b'{"order_id": "x", "amount_cents": ' + b"9" * 5000 + b"}"}, 400, ""),
    ("wrong content type", {"content": b"order_id=x", "headers": {"content-type": "text/plain"}}, 415, ""),
    ("truncated JSON", {"content": b'{"order_id": "x", '}, 400, ""),
    ("empty body", {"content": b""}, 400, ""),
    ("not UTF-8", {"content": b"\xff\xfe"}, 400, ""),
    ("a list, not an object", {"json": [1, 2]}, 422, ""),
]


def key_count(url: str, service: str) -> int:
    r = sync_client(url)
    try:
        return sum(1 for _ in r.scan_iter(match=f"reliq:{{{service}}}:*", count=1000))
    finally:
        r.close()


async def test_bad_input_without_the_app_gets_4xx_and_places_nothing(url: str, names: Names) -> None:
    svc = shop(names())
    async with running(svc, url), gateway(url) as http, client(url) as c:
        await wait_until(lambda: c.handlers(svc.name), what="registry published")
        before = key_count(url, svc.name)
        for verb in ("send", "call"):
            for what, kwargs, status, where in BAD:
                kw = dict(kwargs)
                headers = {**JSON, **kw.pop("headers", {})}
                r = await http.post(f"/{verb}/{svc.name}/place", headers=headers, **kw)
                assert r.status_code == status, (what, r.text)
                assert r.headers["content-type"] == "application/problem+json", what
                assert where in r.json()["detail"], (what, r.json())
                assert "Traceback" not in r.text
        assert await c.redis.xlen(c.keys(svc.name).stream) == 0
        assert key_count(url, svc.name) == before
        # the same gateway accepts a valid body: the refusals above were validation, not an outage
        ok = await http.post(f"/call/{svc.name}/place", json={"order_id": "o", "amount_cents": 7})
        assert ok.status_code == 200 and ok.json() == 7, ok.text
        # the OpenAPI document lists the handler's request schema in this mode too
        doc = (await http.get("/openapi.json")).json()
        body = doc["paths"][f"/send/{svc.name}/place"]["post"]["requestBody"]["content"]["application/json"]
        ref = body["schema"]["$ref"]  # "Order", or "<service>.place.Order" when another service's Order
        assert ref in ("#/components/schemas/Order", f"#/components/schemas/{svc.name}.place.Order")
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]  # was listed first
        assert set(schema["properties"]) >= {"order_id", "amount_cents"}


def versioned(name: str, kind: type) -> Service:
    svc = Service(name)

    if kind is int:

        @svc.handler
        async def take(ctx: Context, n: int) -> str:
            return f"int {n}"

    else:

        @svc.handler
        async def take(ctx: Context, n: str) -> str:  # type: ignore[no-redef]
            return f"str {n}"

    return svc


async def test_a_new_schema_is_picked_up_within_the_cache_period(url: str, names: Names) -> None:
    name = names()
    async with gateway(url) as http, client(url) as c:
        async with running(versioned(name, int), url):
            await wait_until(lambda: c.handlers(name), what="registry published")
            assert (await http.post(f"/send/{name}/take", json="x")).status_code == 422
            assert (await http.post(f"/call/{name}/take", json=1)).json() == "int 1"
        async with running(versioned(name, str), url):

            async def accepted() -> bool:
                return (await http.post(f"/call/{name}/take", json="x")).status_code == 200

            await wait_until(accepted, timeout=CACHE_SECONDS + 3, what="the new schema in force")
            r = await http.post(f"/send/{name}/take", json=1)
            assert r.status_code == 422 and "integer" not in r.json()["detail"], r.text
        catalog = http._transport.app.state.reliq.catalog  # type: ignore[attr-defined]
        assert catalog.compiled.compiles == 2  # once per version, not per request


async def test_rolling_deploy_accepts_either_live_schema_and_says_which(url: str, names: Names) -> None:
    name = names()
    old_svc, new_svc = versioned(name, int), versioned(name, str)
    async with (
        gateway(url) as http,
        client(url) as c,
        running(old_svc, url) as old,
        running(new_svc, url) as new,
    ):

        async def two_versions() -> Any:
            doc = (await http.get("/services")).json()["services"].get(name, {})
            entry = doc.get("take", {})
            return entry if len(entry.get("versions", [])) == 2 else None

        entry = await wait_until(two_versions, timeout=CACHE_SECONDS + 5, what="both versions live")
        current, other = entry["versions"]
        assert current["consumers"] == [new.consumer] and other["consumers"] == [old.consumer]
        assert current["input_schema"] == {"type": "string"} == entry["input_schema"]
        assert entry["schema_version"] == current["version"] and "any" in entry["rule"]
        placed = []
        for body in (1, "x"):
            r = await http.post(f"/send/{name}/take", json=body)
            assert r.status_code == 202, r.text
            placed.append(r.json()["id"])
        refused = await http.post(f"/send/{name}/take", json=[1])
        assert refused.status_code == 422 and "string" in refused.json()["detail"]
        for inv in placed:  # either worker may take either (one of them parks what it cannot read)
            await wait_until(lambda i=inv: _finished(c, i), what="placed invocations finished")


async def _finished(c: Any, inv: str) -> bool:
    return await c.state(inv) in TERMINAL


async def test_the_catalog_refreshes_ahead_so_no_request_waits_for_the_registry(
    url: str, names: Names
) -> None:
    """Past ``REFRESH_AFTER`` a lookup is answered from the entry while one refresh runs in the
    background; only an expired entry (or none) makes a lookup wait for the registry."""
    svc = shop(names())
    async with running(svc, url):
        pass
    gate, reads = asyncio.Event(), []
    async with Client(url) as c:
        read = c.handler_schemas

        async def held(service: str) -> Any:
            reads.append(service)
            await gate.wait()
            return await read(service)

        c.handler_schemas = held  # type: ignore[method-assign]
        cat = Catalog(c, None)
        gate.set()
        first = await cat.lookup(svc.name, "place")
        assert first is not None and len(reads) == 1
        gate.clear()
        stamp, entry = cat._cache.get(svc.name) or (0.0, {})
        cat._cache[svc.name] = (stamp - REFRESH_AFTER, entry)  # due for a refresh, not expired
        for _ in range(10):  # answered at once from the entry while the (held) refresh runs
            assert await asyncio.wait_for(cat.lookup(svc.name, "place"), 5) is first
        assert len(reads) == 2  # one refresh for them all
        gate.set()
        await wait_until(lambda: (cat._cache.get(svc.name) or (0.0,))[0] > stamp, what="the refresh")
        gate.clear()
        cat._cache[svc.name] = (time.monotonic() - CACHE_SECONDS, entry)  # expired: wait for it
        waiting = asyncio.ensure_future(cat.lookup(svc.name, "place"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done() and len(reads) == 3
        gate.set()
        assert (await waiting) is not None
