"""Every 4xx of every write route (send, call, cancel, promises, the admin actions, the bulk redrive) is a
problem document and writes nothing: no new key, no stream entry, no changed set (issue 12,
finding 3: ``/call`` used to place before it checked ``Prefer``; finding 6: ``?at=`` overflowed
into a 500)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ..conftest import Names, client, running, wait_until
from .conftest import gateway
from .test_ingress import shop

ORDER = {"order_id": "o", "amount_cents": 1}
JSON = {"content-type": "application/json"}
HOOK = {"callback-url": "https://hooks.example.com/reliq"}  # on the allowlist of the test's gateway
CROSS = {"sec-fetch-site": "cross-site", "origin": "http://evil.example"}
_SIZE = {
    b"string": "strlen",
    b"hash": "hlen",
    b"list": "llen",
    b"set": "scard",
    b"zset": "zcard",
    b"stream": "xlen",
}


async def keyspace(url: str, own: str | None = None) -> dict[bytes, tuple[bytes, int]]:
    """Every key of the server with its type and size (entries, members, fields or bytes).
    ``own``: only the keys of that service and the global ones (no hash tag): another service's
    keys may expire or change meanwhile (a previous test's records and heartbeats)."""
    r = aioredis.Redis.from_url(url)
    mine = None if own is None else own.encode()
    try:
        out = {}
        async for key in r.scan_iter(count=1000):
            if mine is not None and mine not in key and b"{" in key:
                continue
            kind = await r.type(key)
            if kind in _SIZE:
                out[key] = (kind, int(await getattr(r, _SIZE[kind])(key)))
        return out
    finally:
        await r.aclose()


def write_cases(s: str, done: str) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, httpx kwargs, status): the 4xx answers of the write routes of service ``s``
    (``done`` is a finished invocation of it)."""
    send, call, unknown = f"/send/{s}/place", f"/call/{s}/place", f"{s}.aaaaaaaaaaaaaaaaaaaaaaaaaa"
    key = {**JSON, "idempotency-key": "pw9"}
    cases: list[tuple[str, str, dict[str, Any], int]] = []
    for route in (send, call):
        cases += [
            ("POST", route.replace(s, "a{b}"), {"json": ORDER}, 404),  # bad service name
            ("POST", route.replace(s, "nosuchservice"), {"json": ORDER}, 404),
            ("POST", route.replace("place", "nope"), {"json": ORDER}, 404),  # unknown handler
            ("POST", route.replace("place", "a%20b"), {"json": ORDER}, 404),  # bad handler name
            ("POST", route, {"json": ORDER, "headers": {"idempotency-key": "k" * 256}}, 400),
            ("POST", route, {"json": ORDER, "headers": {"idempotency-key": "a\tb"}}, 400),
            ("POST", route, {"json": ORDER, "headers": {"idempotency-key": ""}}, 400),
            ("POST", route, {"json": ORDER, "headers": {**key, "reply-to": "billing"}}, 400),  # no handler
            ("POST", route, {"json": ORDER, "headers": {**key, "reply-to": "Bill/on"}}, 400),
            ("POST", route, {"json": ORDER, "headers": {**key, "reply-to": "bill/on/x"}}, 400),
            ("POST", route, {"json": ORDER, "headers": {**key, "reply-to": "/on"}}, 400),
            ("POST", route, {"json": ORDER, "headers": {**key, "reply-to": "a{b}/on"}}, 400),
            (
                "POST",
                route,
                {"json": ORDER, "headers": {**key, "callback-url": "http://evil.example/x"}},
                422,
            ),
            ("POST", route, {"json": ORDER, "headers": {**key, "callback-url": "hooks.example.com/x"}}, 400),
            (
                "POST",
                route,
                {"json": ORDER, "headers": {**key, "callback-url": "ftp://hooks.example.com"}},
                400,
            ),
            (
                "POST",
                route,
                {"json": ORDER, "headers": {**key, "callback-url": "http://hooks.example.com:0x"}},
                400,
            ),
            (
                "POST",
                route,
                {"json": ORDER, "headers": {**key, "callback-url": "http://a:b@hooks.example.com"}},
                400,
            ),
            ("POST", route, {"json": ORDER, "headers": {**key, **HOOK, "reply-to": "bill/on"}}, 400),  # both
        ]
        window = {"debounce": "2s", "debounce-key": "d"}
        for bad in (
            {"debounce": "-1"},
            {"debounce": "0"},
            {"debounce": "48h"},  # longer than a day
            {"debounce": "soon"},
            {"debounce-key": ""},
            {"debounce-key": "k" * 256},
            {"debounce-mode": "sometimes"},
            {"debounce": None},  # a key without a window
            {"debounce-key": None},
            {"idempotency-key": "pw9"},  # not with an idempotency key
        ):
            headers = {k: v for k, v in {**window, **bad}.items() if v is not None}
            cases.append(("POST", route, {"json": ORDER, "headers": headers}, 400))
        cases.append(("POST", route + "?delay=5s", {"json": ORDER, "headers": window}, 400))
        cases.append(("POST", route, {"json": ORDER, "headers": {"debounce-mode": "throttle"}}, 400))
        cases.append(("POST", route, {"json": {"order_id": 1}, "headers": window}, 422))  # the body too
        cases += [
            ("POST", route + "?delay=soon", {"json": ORDER, "headers": key}, 400),
            ("POST", route + "?delay=9000h", {"json": ORDER, "headers": key}, 400),  # over 366 days
            ("POST", route + "?delay=-5", {"json": ORDER, "headers": key}, 400),
            ("POST", route + "?at=tomorrow", {"json": ORDER, "headers": key}, 400),
            ("POST", route + "?at=2026-01-01T00:00:00", {"json": ORDER, "headers": key}, 400),  # no offset
            ("POST", route + "?at=0001-01-01T00:00:00%2B14:00", {"json": ORDER, "headers": key}, 400),
            ("POST", route + "?at=9999-12-31T23:59:59Z", {"json": ORDER, "headers": key}, 400),
            ("POST", route, {"content": b'{"order_id": ', "headers": key}, 400),
            ("POST", route, {"content": b"", "headers": key}, 400),
            ("POST", route, {"content": b'{"amount_cents": NaN}', "headers": key}, 400),
            ("POST", route, {"content": b"[" * 1000 + b"]" * 1000, "headers": key}, 400),
            ("POST", route, {"json": {"order_id": 1}, "headers": key}, 422),
            ("POST", route, {"content": b"a=b", "headers": {"content-type": "text/plain"}}, 415),
            ("POST", route, {"content": b"x" * (1024 * 1024 + 1), "headers": key}, 413),
        ]
    for prefer in ("wait=abc", "wait=nan", "wait="):
        cases.append(("POST", call, {"json": ORDER, "headers": {**key, "prefer": prefer}}, 400))
    for inv, status in (("nonsense", 404), ("a{b}.c", 404), (unknown, 404), (done, 409)):
        cases.append(("POST", f"/invocations/{inv}/cancel", {}, status))
    for action in ("redrive", "discard", "release", "retry-now", "cancel"):
        cases += [
            ("POST", f"/admin/invocations/nonsense/{action}", {}, 404),
            ("POST", f"/admin/invocations/{unknown}/{action}", {}, 404),
            ("POST", f"/admin/invocations/{done}/{action}", {"headers": CROSS}, 403),
        ]
    promise = f"/invocations/{done}/promises/approval"
    cases += [
        ("POST", "/invocations/nonsense/promises/approval", {"json": {"value": 1}}, 400),
        ("POST", f"/invocations/{unknown}/promises/approval", {"json": {"value": 1}}, 404),
        ("POST", f"/invocations/{done}/promises/Not%20A%20Name", {"json": {"value": 1}}, 400),
        ("POST", promise, {"json": {"value": 1}}, 409),  # finished: takes no value
        ("POST", promise, {"json": {"error": "no"}}, 409),
        ("POST", promise, {"json": {"value": 1, "error": "both"}}, 400),
        ("POST", promise, {"json": {"error": 7}}, 400),
        ("POST", promise, {"content": b'{"value": ', "headers": JSON}, 400),
        ("POST", promise, {"content": b"", "headers": JSON}, 400),
        ("POST", promise, {"content": b"v=1", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", promise, {"content": b"x" * (1024 * 1024 + 1), "headers": JSON}, 413),
        ("POST", promise, {"json": {"value": 1}, "headers": CROSS}, 403),
    ]
    bulk = f"/admin/services/{s}/parked/redrive"
    cases += [
        ("POST", "/admin/services/nosuchservice/parked/redrive", {}, 404),
        ("POST", "/admin/services/a%7Bb%7D/parked/redrive", {}, 404),
        ("POST", bulk + "?limit=abc", {}, 400),
        ("POST", bulk + "?limit=1" + "0" * 20, {}, 400),
        ("POST", bulk + "?partition=7", {}, 400),  # a partition the service does not have
        ("POST", bulk + "?partition=x", {}, 400),
        ("POST", bulk + "?archived=maybe", {}, 400),
        ("POST", bulk + "?handler=" + "h" * 100, {}, 400),
        ("POST", bulk, {"headers": CROSS}, 403),
    ]
    return cases


async def test_every_4xx_of_every_write_route_writes_nothing(url: str, names: Names) -> None:
    svc = shop(names())
    hooks = frozenset({"hooks.example.com"})
    async with gateway(url, svc, callback_hosts=hooks) as http, client(url) as c:
        async with running(svc, url):  # registers the service and finishes one invocation
            done = (await c.send(svc.name, "place", ORDER)).id
            await wait_until(lambda: c.state(done), what="done")
            assert await c.result(done, 10)
        read_only = ("viewer:r3ad:read", "ops:0per:operator")
        async with gateway(url, svc, tokens=read_only) as guarded:
            before = await keyspace(url, svc.name)
            answered = []
            for method, path, kwargs, status in write_cases(svc.name, done):
                r = await http.request(method, path, **kwargs)
                answered.append((path, r.status_code))
                assert r.status_code == status, (method, path, kwargs.get("headers"), r.text)
                assert r.headers["content-type"] == "application/problem+json", (path, r.text)
                assert "Traceback" not in r.text
            for method, path, kwargs, _ in write_cases(svc.name, done)[:3]:
                assert (await guarded.request(method, path, **kwargs)).status_code == 401  # no token
                viewer = {**kwargs.get("headers", {}), "authorization": "Bearer r3ad"}
                r = await guarded.request(method, path, **{**kwargs, "headers": viewer})
                assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
            after = await keyspace(url, svc.name)
        appeared = {k: v for k, v in after.items() if k not in before}
        changed = {k: (before[k], v) for k, v in after.items() if k in before and before[k] != v}
        assert not appeared and not changed, (appeared, changed)
        assert len(answered) >= 70
        # the issue's /call with a bad Prefer placed the invocation: the key is still unused
        fresh = await http.post(f"/send/{svc.name}/place", json=ORDER, headers={"idempotency-key": "pw9"})
        assert fresh.status_code == 202 and fresh.json()["status"] == "accepted"
        await c.cancel(fresh.json()["id"])
