"""The operator's view of durable function trees: suspended invocations listed per service (paged
over partitions) with what each waits for and where that stands, the live tree of an invocation,
and the CLI (`reliq inspect` shows the waits and the tree; `reliq resolve|reject` one-line errors)."""

from __future__ import annotations

import json

from reliq import Client, Context, Service
from reliq.admin.suspended import suspended
from reliq.admin.tree import tree
from reliq.store.keys import locate

from ..conftest import Names, client, running, wait_until
from ..gateway.conftest import gateway
from .test_cli import reliq


def family(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def child(ctx: Context, n: int) -> int:
        return n + int((await ctx.promise("go"))["add"])

    @svc.handler
    async def parent(ctx: Context, n: int) -> int:
        return int(await ctx.call(svc.name, "child", n)) * 10

    @svc.handler
    async def nap(ctx: Context) -> str:
        await ctx.sleep(3600)
        return "rested"

    return svc


async def _all_suspended(c: Client, ids: list[str]) -> bool:
    return all([await c.state(i) == "suspended" for i in ids])


async def test_suspended_pages_waits_tree_and_cli(url: str, names: Names) -> None:
    svc = family(names("fam"))
    s = svc.name
    async with client(url) as c:
        await c.set_partitions(s, 2)
        async with running(svc, url, suspend_after=0.05), gateway(url, svc) as http:
            parents = [(await c.send(s, "parent", n)).id for n in range(2)]
            napper = (await c.send(s, "nap", None)).id
            await wait_until(lambda: _all_suspended(c, [*parents, napper]), what="parents and nap suspended")
            kids = [(await c.get(p)).children[0] for p in parents]  # type: ignore[union-attr]
            await wait_until(lambda: _all_suspended(c, kids), what="children suspended")

            # paged 2 at a time over both partitions: every suspended invocation exactly once
            seen, cursor, pages = [], None, 0
            while True:
                page = await suspended(c, s, cursor=cursor, limit=2)
                assert page.total == 5 and page.partitions == 2
                seen += page.items
                pages += 1
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert sorted(i.invocation_id for i in seen) == sorted([*parents, *kids, napper]) and pages == 3
            # each in the partition its id names (5 random ids may all fall in one of the two)
            assert all(i.partition == locate(i.invocation_id)[1] for i in seen)
            by_id = {i.invocation_id: i for i in seen}
            for p, k in zip(parents, kids, strict=True):
                [w] = by_id[p].waits
                assert (w.kind, w.target, w.state) == ("child", k, "suspended")
                [w] = by_id[k].waits
                assert (w.kind, w.target, w.state, w.alone) == ("promise", "go", None, True)
            [w] = by_id[napper].waits
            assert w.kind == "timer" and w.due is not None and w.due > page.now + 3500_000

            root = await tree(c, parents[0], depth=2)
            assert root is not None and root.state == "suspended" and root.children_total == 1
            assert root.children[0].id == kids[0] and root.children[0].waits[0].target == "go"
            assert (await tree(c, f"{s}.{'a' * 26}")) is None

            # the same documents over HTTP
            doc = (await http.get(f"/admin/services/{s}/suspended?limit=2")).json()
            assert doc["total"] == 5 and len(doc["items"]) == 2 and doc["next_cursor"]
            assert (await http.get(f"/admin/services/{s}/suspended?cursor=junk")).status_code == 400
            t = (await http.get(f"/admin/invocations/{parents[0]}/tree?depth=1")).json()
            assert (
                t["children"][0]["state"] == "suspended" and t["children"][0]["waits"][0]["kind"] == "promise"
            )
            assert (await http.get(f"/admin/invocations/{parents[0]}/tree?depth=9")).status_code == 400
            detail = (await http.get(f"/admin/invocations/{kids[0]}")).json()
            assert detail["waits"] == [
                {"kind": "promise", "target": "go", "due": None, "alone": True, "state": None}
            ]

            # the CLI: inspect shows the waits and the tree; resolve resumes; bad input is one line
            code, out = await reliq(url, "inspect", parents[0])
            assert code == 0 and "suspended" in out and f"waits for child {kids[0]} (suspended)" in out
            assert "└── waits for promise go\n" in out  # the child's wait, one level down the tree
            code, out = await reliq(url, "suspended", s)
            assert code == 0 and "5 suspended" in out and " ago" in out and "since (ms)" not in out
            code, out = await reliq(url, "resolve", kids[0], "go", '{"add": 5}')
            assert code == 0 and json.loads(out)["status"] == "resumed"
            assert await c.result(parents[0], 15) == 50
            code, out = await reliq(url, "resolve", kids[0], "go", '{"add": 6}')
            assert code == 1 and len(out.strip().splitlines()) == 1 and "settled before" in out
            code, out = await reliq(url, "resolve", kids[1], "go", "{nope")
            assert code == 2 and len(out.strip().splitlines()) == 1 and "malformed JSON" in out
            code, out = await reliq(url, "reject", "nonsense", "go", "no")
            assert code == 2 and len(out.strip().splitlines()) == 1
            code, out = await reliq(url, "reject", kids[1], "go", "no budget")
            assert code == 0 and json.loads(out)["status"] == "resumed"
            await wait_until(lambda: c.state(parents[1]), what="parent 1 moving on")
            code, out = await reliq(url, "reject", kids[1], "go", "twice")
            assert code == 1 and ("first value stands" in out or "finished" in out)
            await c.cancel(napper)
            await c.cancel(parents[1])
