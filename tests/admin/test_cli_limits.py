"""`reliq limits show|set|clear` and the wait reason in `reliq inspect`, as a user runs them (real
subprocesses): a bad value is one line and exit 2 with nothing written (issue 14)."""

from __future__ import annotations

import json

import msgspec

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
        code, out = await reliq(url, "limits", "show", svc.name)
        doc = json.loads(out)
        assert doc["handlers"][0]["override"] == {"limit": 2} and doc["running"] == 2 and doc["queued"] == 0
        code, out = await reliq(url, "limits", "clear", svc.name, "work")
        assert code == 0 and json.loads(out)["override"] is None
        assert await c.redis.hget(spec_key, "work!") is None
        for i in (first, second):
            await c.cancel(i)
