"""Bad input to the admin write routes (schedules, limits, intake) and the admin cursors is a 4xx
problem document that writes nothing, never a 500/503: bodies are read as ``/send`` reads them
(415 for another content type, 413 over ``RELIQ_MAX_BODY`` before a ``100 Continue``, 408 for a
trickled body, 400 for JSON nested too deep); a schedule's date that never occurs or zone that is
no zone is a 400 naming the field; its handler must be in the catalog (404) and its payload the
handler's input (422); a clear of a handler no worker registered is a 422, as a change is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..conftest import Names, client, running, wait_until
from .conftest import gateway
from .test_admin_flow import _svc
from .test_fastpath import answered, connector
from .test_ingress import shop
from .test_write_routes_4xx import keyspace

JSON = {"content-type": "application/json"}
DEEP = b'{"name": "d", "handler": "place", "every": 60, "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
MB = 1 << 20


async def _own(url: str, service: str) -> dict[bytes, tuple[bytes, int]]:
    """The service's keys (other tests may change the global ones meanwhile)."""
    return {k: v for k, v in (await keyspace(url, service)).items() if service.encode() in k}


def schedule_cases() -> list[tuple[dict[str, Any], int, str | None]]:
    """(httpx kwargs, status, the problem's ``field``) of a bad schedule create."""
    ok = {"name": "n", "handler": "slow", "every": 60}
    return [
        ({"json": {**ok, "every": None, "cron": "0 0 30 2 *"}}, 400, "cron"),
        ({"json": {**ok, "every": None, "cron": "0 0 31 4 *"}}, 400, "cron"),
        ({"json": {**ok, "tz": "America"}}, 400, "tz"),
        ({"json": {**ok, "tz": "Etc"}}, 400, "tz"),
        ({"json": {**ok, "tz": "x" * 5000}}, 400, "tz"),
        ({"json": {**ok, "handler": "nope"}}, 404, "handler"),
        ({"json": {**ok, "handler": "place", "payload": 123}}, 422, "payload"),
        ({"json": {**ok, "handler": "place", "payload": {"order_id": 1, "amount_cents": 2}}}, 422, "payload"),
        ({"json": {**ok, "handler": "place"}}, 422, "payload"),  # no payload: not its input either
        ({"content": DEEP, "headers": JSON}, 400, None),
        ({"content": b'{"name": "n"', "headers": JSON}, 400, None),
        ({"content": b"", "headers": JSON}, 400, None),
        ({"content": b'{"name": "n", "handler": "slow", "every": 60}'}, 415, None),  # no type
        ({"content": b"name=n", "headers": {"content-type": "text/plain"}}, 415, None),
        ({"json": {**ok, "payload": "x" * (2 * MB)}}, 413, None),
    ]


@pytest.mark.parametrize("with_app", [True, False], ids=["app", "registry"])
async def test_a_bad_schedule_is_a_problem_and_stores_nothing(url: str, names: Names, with_app: bool) -> None:
    svc = shop(names())
    async with running(svc, url):  # the registry and schemas (the gateway without the App reads them)
        pass
    async with gateway(url, app=svc if with_app else None) as http, client(url) as c:
        k, base = c.keys(svc.name), f"/admin/services/{svc.name}/schedules"
        before = await _own(url, svc.name)
        for kwargs, status, field in schedule_cases():
            r = await http.post(base, **kwargs)
            what = (kwargs.get("json") or {}).get("tz", kwargs.get("json")), r.text[:300]
            assert r.status_code == status, what
            assert r.headers["content-type"] == "application/problem+json", what
            assert r.json().get("field") == field and "Traceback" not in r.text, what
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)
        assert await _own(url, svc.name) == before
        good = {"name": "p", "handler": "place", "every": 60, "payload": {"order_id": "o", "amount_cents": 1}}
        assert (await http.post(base, json=good)).status_code == 201
        assert (await http.post(base, json={"name": "t", "handler": "place", "every": 60})).status_code == 422
        assert (await http.delete(f"{base}/p")).json() == {"status": "deleted"}


def flow_cases(s: str) -> list[tuple[str, dict[str, Any], int]]:
    """(path, httpx kwargs, status) of bad bodies to the limits and intake routes of ``s``."""
    deep = b'{"max_queued": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    out: list[tuple[str, dict[str, Any], int]] = []
    for path in ("limits/work", "intake", "limits/work/clear"):
        route = f"/admin/services/{s}/{path}"
        out += [
            (route, {"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
            (route, {"content": b"{}"}, 415),  # a body without a type
            (route, {"content": b" " * (MB + 1), "headers": JSON}, 413),
            (route, {"content": deep, "headers": JSON}, 400),
        ]
    clear = f"/admin/services/{s}/limits/nope/clear"
    out += [
        (clear, {}, 422),  # no worker registered it: as a change of it
        (f"/admin/services/{s}/limits/work/clear", {"json": {"burst": 1}}, 400),  # takes no body
    ]
    return out


async def test_bad_bodies_to_limits_and_intake_and_an_unknown_clear_write_nothing(
    url: str, names: Names
) -> None:
    svc = _svc(names)
    async with running(svc, url):
        pass
    async with gateway(url) as http:
        before = await _own(url, svc.name)
        for path, kwargs, status in flow_cases(svc.name):
            r = await http.post(path, **kwargs)
            assert r.status_code == status, (path, r.text[:300])
            assert r.headers["content-type"] == "application/problem+json"
        assert await _own(url, svc.name) == before  # no override, no audit line
        log = (await http.get("/admin/audit", params={"service": svc.name})).json()["items"]
        assert log == []
        form = {"content-type": "application/x-www-form-urlencoded"}  # curl -X POST -d ''
        for body, headers in ((None, {}), (b"{}", JSON), (b"null", JSON), (b"", form)):
            r = await http.post(
                f"/admin/services/{svc.name}/limits/work/clear", content=body, headers=headers
            )
            assert r.status_code == 200, r.text  # a known handler's clear: still 200, and audited
        log = (await http.get("/admin/audit", params={"service": svc.name})).json()["items"]
        assert [e["action"] for e in log] == ["limits-clear"] * 4


async def test_a_trickled_admin_body_is_408(url: str, names: Names) -> None:
    svc = _svc(names)
    async with running(svc, url):
        pass
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:  # the start of a body, then nothing
        yield b'{"max'
        await never.wait()

    async with gateway(url, body_timeout=0.2) as http:
        before = await _own(url, svc.name)
        for path in ("schedules", "limits/work", "limits/work/clear", "intake"):
            send = http.post(f"/admin/services/{svc.name}/{path}", content=trickle(), headers=JSON)
            r = await asyncio.wait_for(send, 10)
            assert r.status_code == 408 and r.headers["content-type"] == "application/problem+json", path
        assert await _own(url, svc.name) == before


async def test_an_admin_body_over_the_limit_gets_413_without_100_continue(url: str, names: Names) -> None:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    svc = shop(names())
    async with running(svc, url):
        pass
    settings = GatewaySettings(redis_url=url)
    api = create_app(settings)
    async with api.router.lifespan_context(api):
        connect = connector(settings, api)
        for path in ("schedules", "limits/place", "limits/place/clear", "intake"):
            p, t = connect()
            head = (
                f"POST /admin/services/{svc.name}/{path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
                "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 20000000\r\n\r\n"
            )
            p.data_received(head.encode())
            await wait_until(lambda t=t: answered(t), what="the 413")
            assert t.writes[0].startswith(b"HTTP/1.1 413 "), (path, t.writes[:2])
            assert b"100 Continue" not in b"".join(t.writes)
            p.connection_lost(None)
