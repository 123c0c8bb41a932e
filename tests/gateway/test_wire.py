"""The hot wire (``gateway.wire``): a ``POST /send`` whose head and body arrive in one read is
answered from the protocol without the ASGI app running, with the same answers; everything else
(a late body, a pipelined request behind one in flight, a path that is not a hot route) still
takes uvicorn's way, in order. The gateway's own protocol is fed bytes directly, with the real app
on a real Valkey and the schemas a worker published."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway import fastpath
from gateway import wire as wire_module

from ..conftest import Names, wait_until
from .test_fastpath import Transport, connector, post, published

ORDER = json.dumps({"order_id": "o1", "amount_cents": 5}).encode()


def answers(t: Transport) -> list[tuple[int, dict[str, str], bytes]]:
    """The whole answers written so far: (status, headers, body)."""
    out, rest = [], b"".join(t.writes)
    while rest.startswith(b"HTTP/1.1 "):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        n = int(headers.get("content-length", "0"))
        if len(rest) < n:
            break
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        rest = rest[n:]
    return out


@asynccontextmanager
async def wire(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> AsyncIterator[tuple[Any, str, list[str]]]:
    """(a connected protocol factory, the service, the paths the ASGI app was called for)."""
    api, service, s = await published(url, names, **settings)
    asgi: list[str] = []
    app_call = fastpath.Gateway.__call__

    async def spy(self: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asgi.append(scope["path"])
        await app_call(self, scope, receive, send)

    monkeypatch.setattr(fastpath.Gateway, "__call__", spy)
    async with api.router.lifespan_context(api):
        yield connector(s, api), service, asgi


async def test_a_send_whole_in_one_read_is_answered_without_the_asgi_app(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        p, t = connect()
        p.data_received(post(service, ORDER) + ORDER)
        await wait_until(lambda: answers(t), what="the 202")
        [(status, headers, body)] = answers(t)
        assert status == 202 and len(t.writes) == 1 and asgi == []
        doc = json.loads(body)
        assert doc["status"] == "accepted" and headers["location"] == f"/invocations/{doc['id']}"
        assert headers["reliq-invocation-id"] == doc["id"] and "connection" not in headers
        assert not t.closing  # kept alive: the next request on the same connection is wired too
        p.data_received(post(service, b'{"order_id": 1}') + b'{"order_id": 1}')
        await wait_until(lambda: len(answers(t)) == 2, what="the 422")
        status, headers, body = answers(t)[1]
        assert status == 422 and headers["content-type"] == "application/problem+json" and asgi == []


async def test_a_late_body_and_a_path_that_is_not_a_hot_route_take_the_asgi_way(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        p, t = connect()
        p.data_received(post(service, ORDER) + ORDER[:4])  # the body's end comes in a later read
        await wait_until(lambda: asgi, what="the app to start")
        p.data_received(ORDER[4:])
        await wait_until(lambda: answers(t), what="the 202")
        assert answers(t)[0][0] == 202 and asgi == [f"/send/{service}/place"]
        p, t = connect()
        p.data_received(b"POST /send/x HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 2\r\n\r\n{}")
        await wait_until(lambda: answers(t), what="the 404")
        assert answers(t)[0][0] in (404, 405) and asgi[-1] == "/send/x"


async def test_pipelined_requests_behind_a_wired_one_are_answered_in_order(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        p, t = connect()
        bad = b"{"
        # the first waits for its group commit; the second (a 400 without Redis) must wait for it
        p.data_received(post(service, ORDER) + ORDER + post(service, bad) + bad)
        await wait_until(lambda: len(answers(t)) == 2, what="both answers")
        assert [a[0] for a in answers(t)] == [202, 400]
        assert asgi == [f"/send/{service}/place"]  # the second, queued behind the first, ran as ASGI


async def test_http_1_0_a_shutdown_and_a_lost_connection(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        p, t = connect()
        p.data_received(post(service, ORDER).replace(b"HTTP/1.1", b"HTTP/1.0", 1) + ORDER)
        await wait_until(lambda: answers(t), what="the 202")
        assert answers(t)[0][1]["connection"] == "close" and t.closing
        p, t = connect()
        p.data_received(post(service, ORDER) + ORDER)
        p.shutdown()  # a graceful shutdown with the request in flight: answered, then closed
        assert not t.closing
        await wait_until(lambda: answers(t), what="the 202")
        assert answers(t)[0][0] == 202 and answers(t)[0][1]["connection"] == "close" and t.closing
        p, t = connect()
        p.data_received(post(service, ORDER) + ORDER)
        p.connection_lost(None)  # the caller went away: nothing is written, nothing fails
        await wait_until(lambda: not p.tasks, what="the request to finish")
        assert t.writes == [] and asgi == []


async def test_a_wired_body_gets_the_same_checks(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = json.dumps({"order_id": "o" * 100, "amount_cents": 5}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    async with wire(url, names, monkeypatch, max_body=64) as (connect, service, asgi):
        head = f"POST /send/{service}/place HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n".encode()
        cases = [
            (head + b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(ORDER), ORDER), 415),
            (head + b"Content-Length: %d\r\n\r\n%s" % (len(ORDER), ORDER), 415),  # a body needs its type
            (head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big), 413),
            (head + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, 413),
        ]
        for raw, status in cases:
            p, t = connect()
            p.data_received(raw)
            await wait_until(lambda t=t: answers(t), what=f"the {status}")
            assert (
                answers(t)[0][0] == status and answers(t)[0][1]["content-type"] == "application/problem+json"
            )
        assert asgi == []  # all answered on the wire
        p, t = connect()  # and a good one still passes
        p.data_received(post(service, ORDER) + ORDER)
        await wait_until(lambda: answers(t), what="the 202")
        assert answers(t)[0][0] == 202


async def test_a_wired_request_is_freed_when_answered_not_left_to_the_garbage_collector(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cyclic garbage per request made the collector hold the loop for milliseconds every ~6,000
    requests: with the collector off, the requests answered leave no ``Pending`` behind."""
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        p, t = connect()
        gc.collect()
        gc.disable()
        try:
            for n in range(1, 21):
                p.data_received(post(service, ORDER) + ORDER)
                await wait_until(lambda n=n: len(answers(t)) == n, what=f"answer {n}")
            alive = sum(isinstance(o, wire_module.Pending) for o in gc.get_objects())
        finally:
            gc.enable()
        assert asgi == [] and alive <= 1  # the last one, still the connection's cycle


class Boom(BaseException):
    """Not an ``Exception``: what ``Lane.respond`` does not turn into problem+json itself."""


async def test_a_wired_request_cancelled_is_closed_unanswered_and_one_that_breaks_gets_a_500(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wire(url, names, monkeypatch) as (connect, service, asgi):
        for started in (False, True):  # the server's forced exit, before and after the task's first step
            p, t = connect()
            p.data_received(post(service, ORDER) + ORDER)
            [task] = p.tasks
            if started:
                await asyncio.sleep(0)
            task.cancel()
            await wait_until(lambda p=p: not p.tasks, what="the cancelled request to end")
            assert t.writes == [] and t.closing
        assert not isinstance(Boom(), Exception)

        async def broken(self: Any, scope: Any, receive: Any) -> Any:
            raise Boom

        monkeypatch.setattr(fastpath.Lane, "respond", broken)
        p, t = connect()
        p.data_received(post(service, ORDER) + ORDER)
        await wait_until(lambda: answers(t), what="the 500")
        [(status, headers, _)] = answers(t)
        assert status == 500 and headers["connection"] == "close" and t.closing and asgi == []
