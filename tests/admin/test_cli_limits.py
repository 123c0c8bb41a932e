"""`reliq limits show|set|clear` and the wait reason in `reliq inspect`, as a user runs them (real
subprocesses): a bad value is one line and exit 2 with nothing written (issue 14)."""

from __future__ import annotations

import json

import msgspec
import pytest

from reliq import Context, Service
from reliq.store.flow import flow_keys

from ..conftest import Names, client, running
from .test_cli import reliq


class Acct(msgspec.Struct):
    account: str


async def test_limits_show_set_clear_and_inspect_says_why(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with running(svc, url):  # publishes the spec; no worker runs after this
        pass
    async with client(url) as c:
        spec_key = flow_keys(c.keys(svc.name))[0]
        first, second = [(await c.send(svc.name, "work", {"account": "a"})).id for _ in range(2)]
        code, out = await reliq(url, "inspect", second)
        assert code == 0 and "waits: concurrency key a, 0 ahead (1 running)" in out, out
        code, out = await reliq(url, "limits", "set", svc.name, "work", "--rate", "5/fortnight")
        assert code == 2 and out.count("\n") == 1 and "rate_limit" in out, out
        assert await c.redis.hget(spec_key, "work!") is None
        code, out = await reliq(url, "limits", "set", svc.name, "work", "--concurrency-limit", "2")
        assert code == 0 and json.loads(out)["effective"]["limit"] == 2, out
        shown = (await c.get(second)).state  # type: ignore[union-attr]
        assert shown == "queued"  # admitted: a permit and a stream entry, no worker claimed it yet
        code, out = await reliq(url, "limits", "show", svc.name, "nosuch")  # as set and clear refuse it
        assert code == 2 and out == f"reliq limits: no handler {svc.name}.nosuch is registered\n", out
        code, out = await reliq(url, "limits", "show", svc.name, "work")
        assert code == 0 and [h["handler"] for h in json.loads(out)["handlers"]] == ["work"], out
        code, out = await reliq(url, "limits", "show", svc.name)
        doc = json.loads(out)
        assert doc["handlers"][0]["override"] == {"limit": 2} and doc["running"] == 2 and doc["queued"] == 0
        code, out = await reliq(url, "limits", "clear", svc.name, "work")
        assert code == 0 and json.loads(out)["override"] is None
        assert await c.redis.hget(spec_key, "work!") is None
        for i in (first, second):
            await c.cancel(i)


async def test_send_priority_and_max_queued_from_the_command_line(url: str, names: Names) -> None:
    svc = Service(names(), max_queued=100)

    @svc.handler
    async def job(ctx: Context) -> None: ...

    async with running(svc, url):  # publishes max_queued; no worker runs after this
        pass
    async with client(url) as c:
        k = c.keys(svc.name)
        code, out = await reliq(url, "send", svc.name, "job", "--priority", "urgent")
        assert code == 2 and out.count("\n") == 1 and "priority" in out, out
        assert await c.backlog(svc.name) == 0  # nothing placed
        code, out = await reliq(url, "send", svc.name, "job", "--priority", "low")
        assert code == 0, out
        sent = json.loads(out)["id"]
        assert await c.redis.xlen(k.at("low").stream) == 1
        code, out = await reliq(url, "inspect", sent)
        assert code == 0 and "waits: priority low" in out, out
        code, out = await reliq(url, "limits", "set", svc.name, "--max-queued", "lots")
        assert code == 2 and out.count("\n") == 1 and "--max-queued" in out, out
        assert await c.redis.hget(k.flow, "*!") is None  # nothing written
        for big in ("9007199254740992", "99999999999999999999999"):  # past 2**53 - 1, as over HTTP
            code, out = await reliq(url, "limits", "set", svc.name, "--max-queued", big)
            assert code == 2 and out.count("\n") == 1 and "9007199254740991" in out, out
        assert await c.redis.hget(k.flow, "*!") is None  # nothing written
        with pytest.raises(ValueError, match="9007199254740991"):
            await c.set_max_queued(svc.name, 2**53)
        with pytest.raises(ValueError, match="max_queued"):
            Service("big", max_queued=2**53)
        code, out = await reliq(url, "limits", "set", svc.name, "--max-queued", "7")
        assert code == 0, out
        assert (json.loads(out)["max_queued"], json.loads(out)["source"]) == (7, "override")
        [(_, line)] = await c.redis.xrange(k.audit)  # the change is audited, in the same script call
        assert (line[b"action"], line[b"target"], line[b"result"]) == (b"max-queued-set", b"*", b"7")
        assert line[b"who"].startswith(b"cli:")
        code, out = await reliq(url, "limits", "show", svc.name)
        shown = json.loads(out)["intake"]
        assert (shown["max_queued"], shown["code"], shown["source"]) == (7, 100, "override")
        assert shown["backlog"] == {"high": 0, "normal": 0, "low": 1} and shown["queued"] == 1
        await c.cancel(sent)
