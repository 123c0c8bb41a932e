"""What the hot lane saves per request, each checked where it happens, on the gateway's own HTTP
protocol (``gateway.protocol``) fed bytes directly, with the real app on a real Valkey and the
schemas a worker published (no ``--app``): the answer to ``POST /send`` leaves in one write; a
body that arrived whole arms no deadline, one that has not still gets its 408."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

import gateway.body
from gateway.app import create_app
from gateway.protocol import edge_protocol
from gateway.settings import GatewaySettings
from gateway.wire import BODY_RECEIVED

from ..conftest import Names, running, wait_until
from .test_ingress import shop


class Transport(asyncio.Transport):
    """Records each ``write`` as it is made (one write = one send system call)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def answered(t: Transport) -> bool:
    """A whole answer (head and ``Content-Length`` bytes of body) has been written."""
    head, sep, body = b"".join(t.writes).rpartition(b"HTTP/1.1 ")[2].partition(b"\r\n\r\n")
    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length")]
    return bool(sep and length and len(body) >= length[0])


def post(service: str, body: bytes, *extra: bytes) -> bytes:
    head = (
        f"POST /send/{service}/place HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    )
    return head.encode() + b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(body)


async def published(url: str, names: Names, **settings: Any) -> tuple[Any, str, GatewaySettings]:
    """(a gateway app without an App, the service whose schemas a worker published, its settings)."""
    svc = shop(names())
    async with running(svc, url):  # publishes the schemas; this gateway has no App
        pass
    s = GatewaySettings(redis_url=url, **settings)
    return create_app(s), svc.name, s


def connector(s: GatewaySettings, app: Any) -> Callable[[], tuple[Any, Transport]]:
    """New connections of the gateway's protocol to ``app``, each on a recording transport."""
    cls = edge_protocol(s)
    config = Config(app=app, lifespan="off", http=cls, ws="none")
    config.load()
    state = ServerState()

    def connect() -> tuple[Any, Transport]:
        p = cls(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
        t = Transport()
        p.connection_made(t)
        return p, t

    return connect


@asynccontextmanager
async def edge(url: str, names: Names, **settings: Any) -> AsyncIterator[tuple[Any, str, list[bool]]]:
    """(a connected protocol factory, the service, whether each request's scope said its body
    had arrived when the app ran)."""
    api, service, s = await published(url, names, **settings)
    seen: list[bool] = []

    async def spy(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(BODY_RECEIVED in scope)
        await api(scope, receive, send)

    async with api.router.lifespan_context(api):
        yield connector(s, spy), service, seen


async def test_the_answer_to_a_send_leaves_in_one_write(url: str, names: Names) -> None:
    body = json.dumps({"order_id": "o1", "amount_cents": 5}).encode()
    async with edge(url, names) as (connect, service, _):
        p, t = connect()
        p.data_received(post(service, body) + body)
        await wait_until(lambda: answered(t), what="the 202")
        assert len(t.writes) == 1 and t.writes[0].startswith(b"HTTP/1.1 202 ")
        assert json.loads(t.writes[0].partition(b"\r\n\r\n")[2])["status"] == "accepted"
        # a 100 Continue is written when the app reads the body, before the answer: never held
        p, t = connect()
        p.data_received(post(service, b'{"order_id": 1}', b"Expect: 100-continue\r\n"))
        await wait_until(lambda: t.writes, what="100 Continue")
        assert t.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        p.data_received(b'{"order_id": 1}')
        await wait_until(lambda: answered(t), what="the 422")
        assert len(t.writes) == 2 and t.writes[1].startswith(b"HTTP/1.1 422 ")
        # other routes are written as uvicorn writes them
        p, t = connect()
        p.data_received(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n")
        await wait_until(lambda: answered(t), what="the 200")
        assert len(t.writes) == 2 and t.writes[0].startswith(b"HTTP/1.1 200 ")


async def test_a_body_still_on_its_way_gets_the_deadline_one_already_here_does_not(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed: list[float | None] = []

    def deadline(seconds: float | None) -> Any:
        armed.append(seconds)
        return asyncio.timeout(seconds)

    monkeypatch.setattr(gateway.body, "deadline", deadline)
    body = json.dumps({"order_id": "o2", "amount_cents": 5}).encode()
    async with edge(url, names, body_timeout=0.3) as (connect, service, seen):
        p, t = connect()
        p.data_received(post(service, body) + body)  # head and body in one read
        await wait_until(lambda: answered(t), what="the 202")
        assert seen == [True] and t.writes[0].startswith(b"HTTP/1.1 202 ") and armed == []
        p, t = connect()
        p.data_received(post(service, body))  # the head only: the app starts, the body is late
        await wait_until(lambda: len(seen) == 2, what="the app to start")
        p.data_received(body[:5])
        await wait_until(lambda: answered(t), what="the 408")
        assert seen == [True, False] and t.writes[0].startswith(b"HTTP/1.1 408 ") and armed == [0.3]
