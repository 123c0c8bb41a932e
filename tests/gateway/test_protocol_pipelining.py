"""Pipelined requests at the connection edge of a real gateway process on a real Valkey, over raw
sockets: answers leave in the order of the requests, a malformed request included (its 400
follows the answers owed before it, then the connection closes); the header cap holds for a head
that follows another request in the same read; an ``Upgrade`` request is answered as plain HTTP,
its body included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey

from ..conftest import Names, running
from .test_ingress import shop
from .test_protocol import exchange, gateway_process, problem

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BAD_TAILS = {
    "unknown version": b"GET / HTTP/1.7\r\nHost: 127.0.0.1\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "junk": b"\x01\x02 not http at all\r\n\r\n",
}


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every whole response in ``raw``, in order: (status, headers, body); asserts nothing is left."""
    out, rest = [], raw
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, raw[:300]
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        n = int(headers["content-length"])
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        rest = rest[n:]
    return out


@pytest.fixture(scope="module")
def port(valkey: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One gateway with the default header cap (32 KiB) and a 60 s idle deadline: every exchange
    here ends with the server closing the connection by itself (a 400, a 431, ``Connection: close``)."""
    with gateway_process(valkey.url, tmp_path_factory.mktemp("pipe"), idle_timeout="60") as (port_, _):
        yield port_


async def published(url: str, names: Names) -> str:
    svc = shop(names())
    async with running(svc, url):  # publishes the schemas the gateway checks bodies against
        pass
    return svc.name


def send(service: str, body: bytes, *extra: bytes) -> bytes:
    head = f"POST /send/{service}/place HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head.encode() + b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(body) + body


def order(n: int) -> bytes:
    return json.dumps({"order_id": f"o{n}", "amount_cents": n}).encode()


async def test_a_malformed_request_is_answered_after_the_good_ones_before_it(
    valkey: EmbeddedValkey, port: int, names: Names
) -> None:
    """The good requests (a wired /send, a /healthz through uvicorn's cycle, both, and a /send
    queued behind a /healthz) are answered, in order, then the 400, then the connection closes:
    nothing placed is left without its answer."""
    service = await published(valkey.url, names)
    fronts = {
        "wired send": ([send(service, order(1))], [202]),
        "asgi cycle": ([HEALTHZ], [200]),
        "a queue": ([HEALTHZ, send(service, order(2)), HEALTHZ], [200, 202, 200]),
    }
    async with Client(valkey.url) as c:
        placed = 0
        for front, (requests, statuses) in fronts.items():
            for why, tail in BAD_TAILS.items():
                raw = await asyncio.to_thread(exchange, port, [b"".join(requests) + tail])
                got = responses(raw)
                assert [r[0] for r in got] == [*statuses, 400], (front, why, raw[:600])
                doc = problem(raw[raw.rindex(b"HTTP/1.1 400") :], 400)
                assert str(doc["detail"]).startswith("malformed HTTP request"), (front, why, doc)
                for status, _, body in got:
                    if status == 202:
                        placed += 1
                        assert await c.state(json.loads(body)["id"]) is not None, (front, why)
        assert await c.redis.xlen(c.keys(service).stream) == placed == 6


async def test_a_pipelined_body_that_breaks_off_is_refused_after_the_answer_before_it(
    valkey: EmbeddedValkey, port: int, names: Names
) -> None:
    """A request queued behind one in flight whose chunked body is malformed: the first is
    answered, the broken one gets the 400 (and places nothing), then the connection closes."""
    service = await published(valkey.url, names)
    broken = send(service, b"", b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
    raw = await asyncio.to_thread(
        exchange, port, [send(service, order(1)) + broken + b"zz\r\n{}\r\n0\r\n\r\n"]
    )
    assert [r[0] for r in responses(raw)] == [202, 400], raw[:600]
    problem(raw[raw.index(b"HTTP/1.1 400") :], 400)
    async with Client(valkey.url) as c:
        assert await c.redis.xlen(c.keys(service).stream) == 1


async def test_the_header_cap_holds_for_a_head_pipelined_behind_a_request(
    valkey: EmbeddedValkey, port: int, names: Names
) -> None:
    """A good /send and, in the same write, a GET whose head is 60 KB: 202, then 431. A
    pipelined head under the cap still passes."""
    service = await published(valkey.url, names)
    big = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n"
    raw = await asyncio.to_thread(exchange, port, [send(service, order(1)) + big])
    assert [r[0] for r in responses(raw)] == [202, 431], raw[:600]
    assert "32768 bytes" in str(problem(raw[raw.index(b"HTTP/1.1 431") :], 431)["detail"])
    fine = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Ok: " + b"a" * 31_000
    raw = await asyncio.to_thread(exchange, port, [send(service, order(2)) + fine + b"\r\n\r\n"])
    assert [r[0] for r in responses(raw)] == [202, 200], raw[:600]


async def test_an_upgrade_request_is_answered_as_plain_http_with_its_body(
    valkey: EmbeddedValkey, port: int, names: Names
) -> None:
    """``Upgrade: websocket`` with ``Connection: Upgrade`` on a POST: placed with its body (a
    length or chunks), and the request pipelined behind it is read as HTTP too."""
    service = await published(valkey.url, names)
    upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    body = order(7)
    chunked = send(service, b"", upgrade, b"Transfer-Encoding: chunked\r\n").replace(
        b"Content-Length: 0\r\n", b""
    )
    last = HEALTHZ.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    requests = [
        send(service, body, upgrade),
        chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
        last,
    ]
    raw = await asyncio.to_thread(exchange, port, [b"".join(requests)])
    got = responses(raw)
    assert [r[0] for r in got] == [202, 202, 200], raw[:600]
    async with Client(valkey.url) as c, running(shop(service), valkey.url):
        for _, _, answer in got[:2]:
            assert await c.result(json.loads(answer)["id"], 10) == {"order": "o7", "cents": 7}
