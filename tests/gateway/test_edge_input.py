"""Issue 12 at the gateway: invalid traceparents are not stored, tracebacks reach operators only,
``?at=`` is capped like ``delay``, and the handler catalog stays bounded under random names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gateway.catalog import Catalog
from reliq import Context, Service
from reliq.client.cache import MAX_NAMES

from ..conftest import Names, client, running, wait_until
from .conftest import gateway

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_invalid_traceparents_are_not_stored(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def h(ctx: Context) -> None: ...

    ignored = [
        TP.replace("00-", "ff-", 1),
        TP.replace("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32),
        TP.replace("00f067aa0ba902b7", "0" * 16),
        TP + "-x",
        "00-zz",
    ]
    async with gateway(url, svc) as http, client(url) as c:
        stored = {}
        for header in [TP, *ignored]:
            r = await http.post(f"/send/{svc.name}/h?delay=1h", json=None, headers={"traceparent": header})
            assert r.status_code == 202, r.text
            stored[header] = (await http.get(f"/invocations/{r.json()['id']}")).json()["traceparent"]
            await c.cancel(r.json()["id"])
    assert stored == {TP: TP, **dict.fromkeys(ignored)}


async def test_tracebacks_are_for_operators_only(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=1)
    async def broken(ctx: Context) -> None:
        raise RuntimeError("the ledger is locked")

    tokens = ("viewer:r3ad:read", "ops:0per:operator")
    async with gateway(url, svc) as http, gateway(url, svc, tokens=tokens) as guarded, running(svc, url):
        failed = await http.post(f"/call/{svc.name}/broken", json=None, headers={"prefer": "wait=10"})
        assert failed.status_code == 500 and failed.json()["error_type"] == "RuntimeError"
        inv = failed.headers["reliq-invocation-id"]
        public = [
            await http.get(f"/invocations/{inv}"),
            await http.get(f"/invocations/{inv}/output"),
            await http.get(f"/invocations/{inv}/attach?wait=1"),
            await guarded.get(f"/invocations/{inv}", headers={"authorization": "Bearer 0per"}),
            await guarded.get(f"/admin/invocations/{inv}", headers={"authorization": "Bearer r3ad"}),
        ]
        for r in [failed, *public]:
            assert "the ledger is locked" in r.text and "RuntimeError" in r.text, r.text
            assert "Traceback" not in r.text and 'File \\"' not in r.text and ".py" not in r.text, r.text
        doc = public[0].json()["error"]
        assert (doc["type"], doc["message"], doc["traceback"]) == ("RuntimeError", "the ledger is locked", "")
        for r in (
            await http.get(f"/admin/invocations/{inv}"),  # an open gateway: everyone is the operator
            await guarded.get(f"/admin/invocations/{inv}", headers={"authorization": "Bearer 0per"}),
        ):
            assert "Traceback" in r.json()["invocation"]["error"]["traceback"]


async def test_at_is_capped_like_delay(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def h(ctx: Context) -> None: ...

    async with gateway(url, svc) as http, client(url) as c:
        ok = (datetime.now(UTC) + timedelta(days=365)).isoformat()
        r = await http.post(f"/send/{svc.name}/h", params={"at": ok}, json=None)
        assert r.status_code == 202 and (await c.state(r.json()["id"])) == "scheduled"
        await c.cancel(r.json()["id"])
        for at in ((datetime.now(UTC) + timedelta(days=367)).isoformat(), "0001-01-01T00:00:00+14:00"):
            r = await http.post(f"/send/{svc.name}/h", params={"at": at}, json=None)
            assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
            assert "at" in r.json()["detail"]
        assert not await c.redis.xlen(c.keys(svc.name).stream)


async def test_catalog_stays_bounded_under_random_service_names(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def h(ctx: Context) -> None: ...

    async with client(url) as c, running(svc, url):
        catalog = Catalog(c, None)
        await wait_until(lambda: catalog.lookup(svc.name, "h"), what="registered")
        for _ in range(5000):
            assert await catalog.lookup("n" + uuid.uuid4().hex, "h") is None
        assert len(catalog._cache) == MAX_NAMES and len(c._keys) <= MAX_NAMES
        assert await catalog.lookup(svc.name, "h") is not None  # a real one is found again


async def test_a_long_value_is_elided_in_a_422_and_a_trailing_slash_is_a_404(url: str, names: Names) -> None:
    """Without the App, jsonschema-rs's message quoted the whole offending value: a 900 KB body
    came back as a 900 KB problem. Starlette answered a trailing slash with a bodyless 307."""
    svc = Service(names())

    @svc.handler
    async def h(ctx: Context, req: int) -> None: ...

    async with running(svc, url):  # publishes the schema the gateway validates against
        pass
    async with gateway(url) as http:
        r = await http.post(f"/send/{svc.name}/h", json="x" * 300_000)
        assert r.status_code == 422 and len(r.text) < 2000, len(r.text)
        slash = await http.post(f"/send/{svc.name}/h/", json=1)
        assert slash.status_code == 404 and slash.headers["content-type"] == "application/problem+json"
