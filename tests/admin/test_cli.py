"""`reliq parked | inspect | discard | redrive | pending` as a user runs them (real subprocesses):
readable tables, and with --json the documents of the /admin API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from reliq import Context, Service, Terminal

from ..conftest import Names, client, running, wait_until
from .conftest import ROOT


async def reliq(url: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "reliq", "--redis-url", url, *args),
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "250"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def doc(url: str, *args: str) -> Any:
    code, out = await reliq(url, *args, "--json")
    assert code == 0, out
    return json.loads(out)


async def test_cli_views_and_actions_print_tables_and_json(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def label(ctx: Context, n: int) -> int:
        raise Terminal("printer on fire")

    async with client(url) as c:
        acc = await c.send(svc.name, "label", 1)
        async with running(svc, url):
            await wait_until(lambda: c.parked(svc.name), what="parked")

        parked = await doc(url, "parked", svc.name)
        assert parked["total"] == 1 and parked["items"][0]["invocation_id"] == acc.id
        assert parked["items"][0]["reason"] == "terminal"
        code, table = await reliq(url, "parked", svc.name)
        assert code == 0 and acc.id in table and "printer on fire" in table and "terminal" in table

        detail = await doc(url, "inspect", acc.id)
        assert detail["invocation"]["state"] == "failed" and detail["parked"] is True
        assert [e["event"] for e in detail["timeline"]] == ["accepted", "claimed", "parked"]
        code, text = await reliq(url, "inspect", acc.id)
        assert code == 0 and "timeline" in text and "printer on fire" in text

        assert (await doc(url, "discard", acc.id))["status"] == "discarded"
        assert (await doc(url, "parked", svc.name, "--archived"))["items"][0]["invocation_id"] == acc.id
        assert (await doc(url, "redrive", acc.id))["status"] == "redriven"
        bulk = await doc(url, "redrive", "--all", svc.name)
        assert bulk == {
            "service": svc.name,
            "redriven": [],
            "examined": 0,
            "remaining": 0,
            "next_cursor": None,
        }
        pending = await doc(url, "pending", svc.name)
        assert pending["service"] == svc.name and pending["total"] == 0 and pending["items"] == []
        audit = await c.redis.xrevrange(c.keys(svc.name).audit, "+", "-")
        assert [(f[b"action"], f[b"who"].startswith(b"cli:")) for _, f in audit] == [
            (b"redrive", True),
            (b"discard", True),
        ]

        code, out = await reliq(url, "inspect", f"{svc.name}.{'a' * 26}")
        assert code == 1 and "unknown" in out  # well-formed: a refusal
        code, out = await reliq(url, "inspect", f"{svc.name}.not-an-id")
        assert code == 2 and "unknown" not in out  # malformed: bad input
        code, out = await reliq(url, "pending", "no-such-service")
        assert code == 2 and "no service" in out
        assert await c.cancel(acc.id) == "cancelled"
