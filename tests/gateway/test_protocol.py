"""The connection edge of a real gateway process, attacked over raw sockets (issue 12, finding 4
and uvicorn's own 400s): no request reaches auth or the app before these limits apply."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.settings import GatewaySettings
from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import Names, running, wait_until
from .test_ingress import shop

ROOT = Path(__file__).resolve().parents[2]
GET = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
MB = 1 << 20


@contextmanager
def gateway_process(url: str, logs: Path, **env: str) -> Iterator[tuple[int, int]]:
    """A ``reliq gateway`` process with ``RELIQ_*`` ``env``: yields (port, pid) once it answers."""
    port = free_port()
    with open(logs / f"gw-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reliq", "gateway", "--redis-url", url, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **{f"RELIQ_{k.upper()}": v for k, v in env.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not answers(port):
            assert proc.poll() is None and time.monotonic() < deadline, (logs / f"gw-{port}.log").read_text()
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def answers(port: int) -> bool:
    try:
        return exchange(port, [GET + b"\r\n"], keep=False).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def exchange(port: int, chunks: list[bytes], pause: float = 0.0, keep: bool = True) -> bytes:
    """Send ``chunks`` (``pause`` s apart) until the server stops reading; then everything it sent
    until it closed (or, ``keep=False``, the first response only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with suppress(BrokenPipeError, ConnectionResetError):
            for chunk in chunks:
                s.sendall(chunk)
                time.sleep(pause)
        return read_all(s) if keep else s.recv(65536)


def read_all(s: socket.socket) -> bytes:
    out = b""
    with suppress(ConnectionResetError):
        while data := s.recv(65536):
            out += data
    return out


def problem(raw: bytes, status: int) -> dict[str, object]:
    """The problem document of the one response in ``raw``; asserts the status and media type."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), raw[:300]
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    doc = json.loads(body[: int(headers["content-length"])])
    assert doc["status"] == status and doc["title"] and doc["detail"]
    return dict(doc)


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.fixture(scope="module")
def edge(valkey: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """One gateway with the default header cap, a 1 s header deadline and a 1 s idle deadline."""
    with gateway_process(
        valkey.url, tmp_path_factory.mktemp("edge"), header_timeout="1", idle_timeout="1"
    ) as gw:
        yield gw


async def test_a_huge_header_gets_431_without_the_server_buffering_it(edge: tuple[int, int]) -> None:
    port, pid = edge
    big_but_fine = GET + b"X-Ok: " + b"a" * 30_000 + b"\r\n\r\n"
    assert exchange(port, [big_but_fine], keep=False).startswith(b"HTTP/1.1 200")
    before = rss(pid)
    huge = [GET + b"X-Big: "] + [b"a" * MB] * 32  # 32 MB of one header, three connections at once
    answers_ = await asyncio.gather(*(asyncio.to_thread(exchange, port, huge) for _ in range(3)))
    for raw in answers_:
        assert "32768 bytes" in str(problem(raw, 431)["detail"])
    # many small header fields count the same
    many = [GET] + [b"X-%d: v\r\n" % i for i in range(5000)] + [b"\r\n"]
    problem(await asyncio.to_thread(exchange, port, [b"".join(many)]), 431)
    grown = rss(pid) - before
    assert grown < 8 * MB, f"RSS grew by {grown / MB:.1f} MB"


async def test_uvicorns_own_400s_are_problem_json_and_place_nothing(
    valkey: EmbeddedValkey, edge: tuple[int, int], names: Names
) -> None:
    port, _ = edge
    svc = shop(names())
    async with running(svc, valkey.url):  # publishes the registry the gateway reads
        pass
    head = f"POST /send/{svc.name}/place HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    post = (head + "Content-Type: application/json\r\n").encode()
    body = b'{"order_id": "o1", "amount_cents": 5}'
    length = b"Content-Length: %d\r\n" % len(body)
    attacks = [
        post + b"Content-Length: abc\r\n\r\n" + body,  # bad Content-Length
        post + length + b"Content-Length: 39\r\n\r\n" + body,  # two lengths
        post + length + b"Transfer-Encoding: chunked\r\n\r\n" + body,  # smuggling
        post + b"X-Evil: a\x01b\r\n" + length + b"\r\n" + body,  # control character in a value
        post.replace(b"/place", b"/pl\x7face") + length + b"\r\n" + body,  # in the path
        b"GET /healthz HTTP/9.9\r\n\r\n",  # no such version
    ]
    async with Client(valkey.url) as c:
        keys = await service_keys(valkey.url, svc.name)
        for raw in attacks:
            doc = problem(await asyncio.to_thread(exchange, port, [raw]), 400)
            assert str(doc["detail"]).startswith("malformed HTTP request"), doc
        assert (
            await service_keys(valkey.url, svc.name) == keys
            and await c.redis.xlen(c.keys(svc.name).stream) == 0
        )
        ok = post + length + b"\r\n" + body  # the same request, well-formed, is placed
        placed = await asyncio.to_thread(exchange, port, [ok])  # read until the idle close
        assert placed.startswith(b"HTTP/1.1 202") and await c.redis.xlen(c.keys(svc.name).stream) == 1
        async with running(svc, valkey.url):
            inv = json.loads(placed.partition(b"\r\n\r\n")[2])["id"]
            assert await c.result(inv, 10) == {"order": "o1", "cents": 5}


async def test_bodies_past_the_header_cap_and_pipelined_requests_pass_intact(
    valkey: EmbeddedValkey, edge: tuple[int, int], names: Names
) -> None:
    """The parser is fed the head in pieces no larger than the cap: what follows a head (a body of
    200 KB, the next pipelined request) still reaches the app whole and in order."""
    port, _ = edge
    svc = shop(names())
    async with running(svc, valkey.url):  # publishes the registry the gateway reads
        pass
    order = "o" * 200_000
    body = json.dumps({"order_id": order, "amount_cents": 7}).encode()
    post = f"POST /send/{svc.name}/place HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    request = post.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body
    raw = await asyncio.to_thread(exchange, port, [GET + b"\r\n" + request + GET + b"\r\n"])
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"200", b"202", b"200"], raw[:400]
    inv = json.loads(raw[raw.index(b'{"id"') :].partition(b"}")[0] + b"}")["id"]
    async with Client(valkey.url) as c, running(svc, valkey.url):
        assert await c.result(inv, 10) == {"order": order, "cents": 7}


async def service_keys(url: str, service: str) -> set[bytes]:
    async with aioredis.Redis.from_url(url) as r:
        return {k async for k in r.scan_iter(match=f"reliq:{{{service}}}:*")}


async def test_a_trickled_head_gets_408_after_the_header_deadline(edge: tuple[int, int]) -> None:
    port, _ = edge
    t0 = time.monotonic()
    raw = await asyncio.to_thread(exchange, port, [GET] + [b"X"] * 200, 0.05)  # 20 bytes a second
    problem(raw, 408)
    assert 0.9 < time.monotonic() - t0 < 4  # the 1 s deadline runs from the first byte


async def test_an_idle_connection_is_closed_new_or_kept_alive(edge: tuple[int, int]) -> None:
    port, _ = edge

    def closed_after(request: bytes) -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(request)
            t0 = time.monotonic()
            return read_all(s), time.monotonic() - t0

    silent, took = await asyncio.to_thread(closed_after, b"")  # connects, never sends a byte
    assert silent == b"" and 0.9 < took < 4
    kept, took = await asyncio.to_thread(closed_after, GET + b"\r\n")  # one request, then silence
    assert kept.startswith(b"HTTP/1.1 200") and kept.count(b"HTTP/1.1") == 1 and 0.9 < took < 4


async def test_the_idle_deadline_runs_from_the_last_answer_not_from_the_first(edge: tuple[int, int]) -> None:
    """Requests 0.4 s apart for 2.4 s keep a connection with a 1 s idle deadline open (the one
    idle timer, made at the first answer, sees the later ones); silence then closes it 1 s after
    the last answer."""
    port, _ = edge

    def paced() -> tuple[int, float]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            for _ in range(6):
                s.sendall(GET + b"\r\n")
                got = b""
                while not got.endswith(b"}"):  # /healthz answers one JSON object
                    chunk = s.recv(65536)
                    assert chunk, "closed while busy"
                    got += chunk
                assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1, got
                time.sleep(0.4)  # the client's pace, not a wait for an outcome
            t0 = time.monotonic() - 0.4
            return len(read_all(s)), time.monotonic() - t0

    rest, took = await asyncio.to_thread(paced)
    assert rest == 0 and 0.9 < took < 4


async def test_past_the_connection_cap_a_new_connection_gets_503_at_once(
    valkey: EmbeddedValkey, tmp_path: Path
) -> None:
    with (
        gateway_process(valkey.url, tmp_path, max_connections="4", idle_timeout="60") as (port, _),
        ExitStack() as held,
    ):
        for _ in range(4):  # each holds a kept-alive connection the server has answered
            s = held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            s.sendall(GET + b"\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        refused = await asyncio.to_thread(exchange, port, [GET + b"\r\n"])
        assert "connection limit" in str(problem(refused, 503)["detail"]) and time.monotonic() - t0 < 1
        assert b"\r\nretry-after: 1\r\n" in refused
        s.close()
        await wait_until(lambda: answers(port), what="a connection served once one closed")


def test_edge_limits_must_be_positive() -> None:
    zero: list[dict[str, Any]] = [
        {"max_header_bytes": 0},
        {"header_timeout": 0.0},
        {"idle_timeout": -1.0},
        {"max_connections": 0},
    ]
    for bad in zero:
        with pytest.raises(ValueError, match="must be > 0"):
            GatewaySettings(**bad)
