"""HTTP callbacks (``callback_url=`` / ``Callback-URL``): the outcome is POSTed by the built-in
``reliq-callbacks/deliver`` handler, signed (HMAC-SHA256 over timestamp + body), retried with
backoff against a local server that fails twice, parked after max attempts, and only to hosts on
the allowlist: refused at the send (nothing placed) and again at delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import msgspec
import pytest

from reliq import Context, Service
from reliq.client.callbacks import (
    SERVICE,
    CallbackHostRefused,
    CallbackSettings,
    InvalidCallbackURL,
    reply_target,
    sign,
    verify,
)
from reliq.store.keys import reply_token

from .conftest import Names, client, running, wait_until

SECRET = b"test-secret"


@dataclass
class Hook:
    """A local HTTP server: answers ``fail`` times with 500, then 200; keeps what it got."""

    fail: int
    port: int = 0
    got: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = 500 if len(self.got) < self.fail else 200
        self.got.append((headers, body, status))
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@asynccontextmanager
async def hook(fail: int) -> AsyncIterator[Hook]:
    h = Hook(fail)
    server = await asyncio.start_server(h.serve, "127.0.0.1", 0)
    h.port = server.sockets[0].getsockname()[1]
    async with server:
        yield h


def settings(**kw: object) -> CallbackSettings:
    base: dict[str, object] = {"hosts": frozenset({"127.0.0.1"}), "secret": SECRET, "backoff": 0.05}
    return CallbackSettings(**{**base, **kw})  # type: ignore[arg-type]


def work(names: Names) -> Service:
    names.used.append(SERVICE)  # the delivery invocations are checked for leaks too
    svc = Service(names("cb"))

    @svc.handler(max_attempts=1)
    async def charge(ctx: Context, cents: int) -> dict[str, int]:
        return {"charged": cents}

    return svc


@pytest.mark.semantics  # on a Cluster too: the delivery invocation lives in another slot
async def test_a_callback_is_retried_until_accepted_and_its_signature_verifies(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = work(names)
    monkeypatch.setenv("RELIQ_CALLBACK_HOSTS", "127.0.0.1")  # the client checks the same allowlist
    async with hook(fail=2) as h, client(url) as c:
        async with running(svc, url, relay_interval=0.2, callbacks=settings()):
            acc = await c.send(svc.name, "charge", 5, callback_url=h.url)
            await wait_until(lambda: len(h.got) >= 3, what="the third POST")
            delivery = await c.route(SERVICE, reply_token(SERVICE, acc.id))
            doc = await wait_until(lambda: _finished(c, delivery), what="the delivery settled")
        assert [s for _, _, s in h.got] == [500, 500, 200]
        assert doc.state == "succeeded" and doc.attempt == 3
        headers, body, _ = h.got[-1]
        assert verify(SECRET, headers["reliq-signature"], body)
        assert not verify(b"other", headers["reliq-signature"], body)
        assert not verify(SECRET, headers["reliq-signature"], body + b" ")
        assert headers["reliq-delivery-id"] == delivery and headers["reliq-invocation-id"] == acc.id
        sent = msgspec.json.decode(body)
        assert sent == {"id": acc.id, "state": "succeeded", "result": {"charged": 5}, "error": None}
        assert {b for _, b, _ in h.got} == {body}  # every attempt POSTs the same document


async def test_a_callback_is_parked_after_max_attempts(url: str, names: Names) -> None:
    svc = work(names)
    async with hook(fail=100) as h, client(url) as c:
        async with running(svc, url, relay_interval=0.2, callbacks=settings(attempts=2)):
            acc = await c.send(svc.name, "charge", 1, reply_to=reply_target(h.url, settings()))
            delivery = await c.route(SERVICE, reply_token(SERVICE, acc.id))
            doc = await wait_until(lambda: _finished(c, delivery), what="the delivery parked")
        assert doc.state == "failed" and doc.reason == "attempts-exhausted" and len(h.got) == 2
        assert delivery in await c.parked(SERVICE)


async def test_a_host_off_the_allowlist_is_refused_at_the_send_and_at_delivery(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = work(names)
    monkeypatch.setenv("RELIQ_CALLBACK_HOSTS", "hooks.example.com")
    async with hook(fail=0) as h, client(url) as c:
        with pytest.raises(CallbackHostRefused):
            await c.send(svc.name, "charge", 1, key="k1", callback_url=h.url)
        with pytest.raises(InvalidCallbackURL):
            await c.send(svc.name, "charge", 1, key="k1", callback_url="ftp://hooks.example.com/x")
        assert await c.get(await c.id_for(svc.name, "k1")) is None  # nothing placed
        # placed while the host was allowed; the worker's allowlist no longer has it
        acc = await c.send(svc.name, "charge", 2, reply_to=reply_target(h.url, settings()))
        off = settings(hosts=frozenset({"hooks.example.com"}))
        async with running(svc, url, relay_interval=0.2, callbacks=off):
            delivery = await c.route(SERVICE, reply_token(SERVICE, acc.id))
            doc = await wait_until(lambda: _finished(c, delivery), what="the delivery parked")
        assert doc.state == "failed" and doc.reason == "terminal" and doc.attempt == 1
        assert h.got == []  # never POSTed


def test_signatures_are_bound_to_their_timestamp_and_expire() -> None:
    body = b'{"id":"x"}'
    assert verify(SECRET, sign(SECRET, body), body)
    assert not verify(SECRET, sign(SECRET, body, 1_000), body)  # too old: a replay
    header = sign(SECRET, body, 2_000_000_000).replace("t=2000000000", "t=1999999999")
    assert not verify(SECRET, header, body, tolerance=10**10)  # the timestamp is signed
    assert not verify(SECRET, "garbage", body)


async def _finished(c: object, inv: str) -> object:
    doc = await c.get(inv)  # type: ignore[attr-defined]
    return doc if doc is not None and doc.state in ("succeeded", "failed") else None
