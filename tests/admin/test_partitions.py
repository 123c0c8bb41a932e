"""The admin views of a partitioned service: the overview adds up the partitions and lists each;
pending, parked and audit are merged over the partitions (each row says its partition), filter
on one with ``?partition=N``, and page exactly even when partitions share entry ids or park
times; actions find the invocation's partition from its id."""

from __future__ import annotations

from typing import Any

import httpx

from reliq import Context, Retry, Service, Terminal
from reliq.store.keys import GROUP, SERVICES, child_token, make_id, partition_of, partition_of_token

from ..conftest import Names, client, running, wait_until
from ..gateway.conftest import gateway
from .conftest import ok
from .partitioned import P, keys_in, stuck, unstick
from .test_cli import doc, reliq


async def walk(http: httpx.AsyncClient, path: str, field: str, **params: Any) -> list[Any]:
    """Every item of a paged list, following next_cursor; asserts no page comes back twice."""
    items: list[Any] = []
    cursors: list[str] = []
    cursor = None
    while True:
        page = ok(await http.get(path, params={**params, **({"cursor": cursor} if cursor else {})}))
        items += [i[field] if field else i for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert cursor not in cursors, "a cursor came back: the paging loops"
        cursors.append(cursor)


async def test_overview_sums_the_partitions_and_the_lists_merge_them(url: str, names: Names) -> None:
    svc = Service(names(), partitions=P)

    @svc.handler
    async def refuse(ctx: Context, n: int) -> int:
        raise Terminal("no")

    @svc.handler
    async def later(ctx: Context, n: int) -> int:
        raise Retry(delay=3600)

    @svc.handler
    async def order(ctx: Context) -> str:
        keys = (f"c{i}" for i in range(10_000))  # a child in partition 2, whatever this id is
        key = next(k for k in keys if partition_of_token(child_token(svc.name, ctx.id, k), P) == 2)
        return str(await ctx.call(svc.name, "pack", key=key))

    @svc.handler
    async def pack(ctx: Context) -> str:
        return ctx.id

    async with running(svc, url), client(url) as c, gateway(url) as http:
        base = f"/admin/services/{svc.name}"
        refused = [(await c.send(svc.name, "refuse", p, key=k)).id for p, k in enumerate(keys_in(svc.name))]
        wkeys = keys_in(svc.name, P, "w")
        waiting = [(await c.send(svc.name, "later", p, key=k)).id for p, k in enumerate(wkeys)]
        assert [partition_of(i) for i in refused + waiting] == [0, 1, 2, 0, 1, 2]

        async def settled() -> Any:
            one = ok(await http.get(base))
            return one if one["parked"] == P and one["delayed"] == P else None

        one = await wait_until(settled, what="3 parked and 3 delayed, one per partition")
        assert (one["layout"]["partitions"], one["layout"]["high"]) == (P, P)
        parts = one["partitions"]
        assert [(x["partition"], x["parked"], x["delayed"]) for x in parts] == [(p, 1, 1) for p in range(P)]
        assert [sum(m["failed"] for m in x["minutes"]) for x in parts] == [1, 1, 1]
        assert [sum(m["retried"] for m in x["minutes"]) for x in parts] == [1, 1, 1]
        assert [sum(m[o] for m in one["minutes"]) for o in ("failed", "retried")] == [3, 3]
        assert len(one["minutes"]) == 15 and all(len(x["minutes"]) == 15 for x in parts)
        [worker] = one["consumers"]  # one consumer name reads every partition: listed once
        assert worker["alive"] and one["consumers_total"] == 1
        assert [x["consumers_total"] for x in parts] == [1, 1, 1]
        listed = [s for s in ok(await http.get("/admin/services"))["services"] if s["service"] == svc.name]
        assert listed[0]["parked"] == P and len(listed[0]["partitions"]) == P

        page = ok(await http.get(f"{base}/parked"))
        assert page["total"] == P and page["partitions"] == P and page["partition"] is None
        assert sorted((i["partition"], i["invocation_id"]) for i in page["items"]) == list(enumerate(refused))
        times = [i["parked_at"] for i in page["items"]]
        assert times == sorted(times, reverse=True)  # newest first over all partitions
        assert await walk(http, f"{base}/parked", "invocation_id", limit=1) == [
            i["invocation_id"] for i in page["items"]
        ]
        only = ok(await http.get(f"{base}/parked", params={"partition": 1}))
        assert [i["invocation_id"] for i in only["items"]] == [refused[1]] and only["total"] == 1
        assert only["partition"] == 1
        r = await http.get(f"{base}/parked", params={"partition": P})
        assert r.status_code == 400 and "no partition 3" in r.json()["detail"]

        acc = await c.send(svc.name, "order")  # parent and child in different partitions
        child = await c.result(acc.id, 10)
        assert partition_of(child) == 2
        d = ok(await http.get(f"/admin/invocations/{acc.id}"))
        assert d["partition"] == partition_of(acc.id)
        assert [(k["id"], k["state"], k["handler"]) for k in d["children"]] == [(child, "succeeded", "pack")]
        assert ok(await http.get(f"/admin/invocations/{child}"))["parent"]["state"] == "succeeded"

        done = ok(await http.post(f"/admin/invocations/{refused[2]}/discard"))
        assert done["status"] == "discarded"
        archive = ok(await http.get(f"{base}/parked", params={"archived": "true"}))
        assert [(i["partition"], i["invocation_id"]) for i in archive["items"]] == [(2, refused[2])]
        bulk = ok(await http.post(f"{base}/parked/redrive", params={"partition": 1}))
        assert bulk["redriven"] == [refused[1]]  # only partition 1's

        log = ok(await http.get("/admin/audit", params={"service": svc.name}))["items"]
        assert [(x["partition"], x["action"], x["target"]) for x in log] == [
            (1, "redrive", refused[1]),
            (2, "discard", refused[2]),
        ]
        only_log = ok(await http.get("/admin/audit", params={"service": svc.name, "partition": 2}))["items"]
        assert [x["target"] for x in only_log] == [refused[2]]
        bad = await http.get("/admin/audit", params={"service": svc.name, "partition": 3})
        assert bad.status_code == 400 and "no partition 3" in bad.json()["detail"]

        async def reparked() -> bool:
            return bool(ok(await http.get(f"{base}/parked", params={"partition": 1}))["total"])

        await wait_until(reparked, what="the redriven one parked again")
        for i in waiting:
            assert await c.cancel(i) == "cancelled"


async def test_a_dead_consumer_holding_entries_in_two_partitions(url: str, names: Names) -> None:
    name = names()
    async with client(url) as c, gateway(url) as http:
        ids = await stuck(c, name)
        base = f"/admin/services/{name}"
        try:
            one = ok(await http.get(base))
            assert (one["pending"], one["stream_length"], one["lag"]) == (3, 3, 0)
            assert [(x["name"], x["alive"], x["pending"], x["partitions"]) for x in one["consumers"]] == [
                ("ghost", False, 2, [1, 2]),
                ("live", True, 1, [0]),
            ]
            assert one["consumers"][1]["concurrency"] == 10 and one["consumers_total"] == 2
            parts = one["partitions"]
            held = [[(h["name"], h["alive"], h["pending"]) for h in x["consumers"]] for x in parts]
            assert held == [[("live", True, 1)], [("ghost", False, 1)], [("ghost", False, 1)]]
            assert (one["oldest_pending"]["partition"], one["oldest_pending"]["owner"]) == (0, "live")

            page = ok(await http.get(f"{base}/pending"))
            rows = [(e["partition"], e["invocation_id"], e["owner"], e["owner_alive"]) for e in page["items"]]
            owners = [("live", True), ("ghost", False), ("ghost", False)]
            assert rows == [(p, ids[p], *owners[p]) for p in range(P)]
            assert (page["total"], page["partitions"], page["next_cursor"]) == (3, 3, None)
            assert await walk(http, f"{base}/pending", "invocation_id", limit=1) == ids
            assert await walk(http, f"{base}/pending", "invocation_id", consumer="ghost") == ids[1:]
            two = ok(await http.get(f"{base}/pending", params={"partition": 2}))
            assert [e["invocation_id"] for e in two["items"]] == [ids[2]] and two["total"] == 1
            assert (await http.get(f"{base}/pending", params={"partition": 3})).status_code == 400

            released = ok(await http.post(f"/admin/invocations/{ids[1]}/release"))
            assert released["status"] == "released"
            rows = {e["partition"]: e for e in ok(await http.get(f"{base}/pending"))["items"]}
            # the entry of ids[1]'s partition, not another
            assert [rows[p]["released"] for p in range(P)] == [False, True, False]
            assert rows[1]["reclaim_in_ms"] == 0 and rows[1]["idle_ms"] < 60_000
            log = ok(await http.get("/admin/audit", params={"service": name}))["items"]
            assert [(x["partition"], x["target"], x["result"]) for x in log] == [(1, ids[1], "released")]
            assert ok(await http.get("/admin/audit", params={"service": name, "partition": 0}))["items"] == []
            d = ok(await http.get(f"/admin/invocations/{ids[2]}"))
            assert d["partition"] == 2 and d["pending_entry"]["owner"] == "ghost"

            cli = await doc(url, "pending", name, "--partition", "2")
            assert [(e["partition"], e["invocation_id"]) for e in cli["items"]] == [(2, ids[2])]
            code, table = await reliq(url, "pending", name)
            assert code == 0 and "part." in table and "in 3 partitions" in table and ids[1] in table
            audit = await doc(url, "audit", "--service", name)
            assert [(x["partition"], x["action"]) for x in audit["items"]] == [(1, "release")]
        finally:
            await unstick(c, name, ids)


def _token(n: int) -> str:
    return "a" * 24 + "abcdefgh"[n // 8] + "abcdefgh"[n % 8]


async def test_paging_is_exact_when_partitions_share_entry_ids_and_park_times(url: str, names: Names) -> None:
    name = names()
    async with client(url) as c, gateway(url) as http:
        await c.set_partitions(name, P)
        await c.redis.sadd(SERVICES, name)
        ks = [c.keys(name, p) for p in range(P)]
        try:
            pending: list[tuple[str, int]] = []  # stream entry ids repeat across partitions
            for k in ks:
                for eid in ("1000-1", "1000-2"):
                    inv = make_id(name, _token(len(pending)), k.partition)
                    await c.redis.xadd(k.stream, {"i": inv}, id=eid)
                    pending.append((eid, k.partition))
                await c.redis.xgroup_create(k.stream, GROUP, id="0")
                await c.redis.xreadgroup(GROUP, "ghost", {k.stream: ">"}, count=10)
            want = sorted(pending)
            for limit in (1, 2, 4, 6):
                got = await walk(http, f"/admin/services/{name}/pending", "", limit=limit)
                assert [(e["entry_id"], e["partition"]) for e in got] == want, limit

            scores = {0: [5, 5, 7], 1: [5, 4], 2: [5, 6, 5]}  # park times repeat within and across
            parked = []
            for p, ss in scores.items():
                for s in ss:
                    member = make_id(name, _token(len(parked)), p)
                    await c.redis.zadd(ks[p].parked, {member: s})
                    parked.append((s, p, member))
            parked.sort(key=lambda x: x[2], reverse=True)
            parked.sort(key=lambda x: (-x[0], x[1]))
            for limit in (1, 2, 3, 8):
                got = await walk(http, f"/admin/services/{name}/parked", "", limit=limit)
                assert [(i["parked_at"], i["partition"], i["invocation_id"]) for i in got] == parked, limit
                assert all(i["expired"] for i in got)

            for k, eids in zip(ks, (["1000-0"], ["999-0", "1000-0"], ["1000-0"]), strict=True):
                for eid in eids:
                    fields = {"who": "t", "action": "cancel", "target": eid, "result": "terminal"}
                    await c.redis.xadd(k.audit, fields, id=eid)
            want_log = [("1000-0", 0), ("1000-0", 1), ("1000-0", 2), ("999-0", 1)]
            for limit in (1, 2, 3):
                got = await walk(http, "/admin/audit", "", service=name, limit=limit)
                assert [(x["id"], x["partition"]) for x in got] == want_log, limit
        finally:
            await c.redis.delete(c.keys(name).layout, *(x for k in ks for x in (k.stream, k.parked, k.audit)))
            await c.redis.srem(SERVICES, name)
