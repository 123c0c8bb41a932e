"""What `reliq send`, `get` and `schedules` say when they refuse: one line on stderr, exit 2 for
bad input (the gateway's 404 / 422: an unregistered service or handler, a payload its schema
refuses, malformed JSON), exit 1 for a refusal at run time (backpressure, an idempotency conflict),
nothing written either way; a closed stdout ends quietly with exit 141."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec

import reliq as public
from reliq import Context, Service, errors
from reliq.cli.main import SIGPIPE_EXIT

from .conftest import Names, client, running

ROOT = Path(__file__).resolve().parents[1]


async def reliq(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, *argv]
    run = subprocess.run
    return await asyncio.to_thread(run, cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def refused(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr and not done.stdout, done.stderr
    assert all(w in lines[0] for w in words), lines[0]


class Order(msgspec.Struct):
    order_id: str
    amount_cents: int = 0


def shop(name: str, max_queued: int | None = None) -> Service:
    svc = Service(name, max_queued=max_queued)

    @svc.handler
    async def place(ctx: Context, req: Order) -> str:
        return req.order_id

    @svc.handler
    async def ping(ctx: Context) -> str:
        return "pong"

    return svc


def test_every_exception_reliq_exports_is_a_reliq_error_but_cancelled() -> None:
    """One ``except ReliqError`` catches whatever reliq raises (the CLI's last resort relies on
    it); ``Cancelled`` stays an ``asyncio.CancelledError`` only, so ``except Exception`` in a
    handler does not swallow a cancellation."""
    exported = [getattr(public, n) for n in public.__all__]
    found = [c for c in [*exported, *vars(errors).values()] if inspect.isclass(c)]
    raised = {c for c in found if issubclass(c, BaseException) and c.__module__.startswith("reliq")}
    assert len(raised) > 15
    assert [c.__name__ for c in raised if not issubclass(c, errors.ReliqError)] == ["Cancelled"]
    assert not issubclass(errors.Cancelled, Exception)


async def test_send_checks_what_the_gateway_checks_before_writing_anything(url: str, names: Names) -> None:
    svc = shop(names())
    nosuch = names()
    async with running(svc, url):  # publishes the registry and the schemas; no worker after this
        pass
    async with client(url) as c:
        refused(await reliq(url, "send", nosuch, "thing", "{}"), 2, f"no service '{nosuch}'", "--no-check")
        refused(await reliq(url, "send", svc.name, "thing", "{}"), 2, f"no handler {svc.name}/thing")
        bad = await reliq(url, "send", svc.name, "place", '{"order_id": 1}')
        refused(bad, 2, f"{svc.name}/place's input schema", "`$.order_id`")
        refused(await reliq(url, "send", svc.name, "place", '{"order_id": "x"'), 2, "malformed JSON")
        assert await c.backlog(svc.name) == 0 and await c.backlog(nosuch) == 0  # nothing written
        assert not await c.redis.exists(c.keys(nosuch).stream, c.keys(nosuch).layout)

        ok = await reliq(url, "send", svc.name, "place", '{"order_id": "o1"}')
        assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "accepted", ok.stderr
        ping = await reliq(url, "send", svc.name, "ping")  # no input: nothing to validate
        assert ping.returncode == 0, ping.stderr
        early = await reliq(url, "send", nosuch, "thing", "{}", "--no-check")  # before any worker
        assert early.returncode == 0, early.stderr
        sent = [json.loads(x.stdout)["id"] for x in (ok, ping, early)]
        assert await c.backlog(svc.name) == 2 and await c.backlog(nosuch) == 1
        for i in sent:
            await c.cancel(i)


async def test_backpressure_and_an_idempotency_conflict_are_one_line_and_exit_1(
    url: str, names: Names
) -> None:
    svc = shop(names(), max_queued=1)
    async with running(svc, url):  # publishes max_queued
        pass
    async with client(url) as c:
        first = await reliq(
            url, "send", svc.name, "place", '{"order_id": "c1", "amount_cents": 100}', "--key", "c1"
        )
        assert first.returncode == 0, first.stderr
        inv = json.loads(first.stdout)["id"]
        other = await reliq(
            url, "send", svc.name, "place", '{"order_id": "c1", "amount_cents": 200}', "--key", "c1"
        )
        refused(other, 1, "reliq send: idempotency key already used", inv)
        full = await reliq(url, "send", svc.name, "place", '{"order_id": "c2"}')
        refused(full, 1, f"reliq send: {svc.name} is at its limit of queued invocations", "retry in 1 s")
        assert await c.backlog(svc.name) == 1  # nothing more written
        doc = await c.get(inv)
        assert doc is not None and doc.payload == {"order_id": "c1", "amount_cents": 100}
        await c.cancel(inv)


async def test_a_closed_stdout_ends_quietly(url: str) -> None:
    """`reliq get ID | head -c 300`: the reader is gone before reliq writes (JSON, or a rich table)."""
    for command in ("durability", "audit"):
        read, write = os.pipe()
        os.close(read)
        try:
            cmd = [sys.executable, "-m", "reliq", "--redis-url", url, command]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            run = subprocess.run
            done = await asyncio.to_thread(
                run, cmd, cwd=ROOT, env=env, stdout=write, stderr=subprocess.PIPE, timeout=60
            )
        finally:
            os.close(write)
        assert (command, done.returncode, done.stderr) == (command, SIGPIPE_EXIT, b"")


async def test_listing_the_schedules_of_an_unregistered_service_is_refused_like_limits(
    url: str, names: Names
) -> None:
    svc = shop(names())
    nosuch = names()
    refused(await reliq(url, "schedules", nosuch), 2, f"reliq schedules: no service '{nosuch}' is registered")
    refused(
        await reliq(url, "limits", "show", nosuch), 2, f"reliq limits: no service '{nosuch}' is registered"
    )
    async with running(svc, url):
        pass
    listed = await reliq(url, "schedules", svc.name)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, []), listed.stderr
