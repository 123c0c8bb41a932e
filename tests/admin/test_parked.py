"""Parked work and the actions on it, with an in-process worker: redrive (twice = one run),
discard to the archive and recover, retry-now, bulk redrive filtered by handler."""

from __future__ import annotations

import asyncio
from typing import Any

from reliq import Context, Retry, Service, Terminal

from ..conftest import Names, client, running, wait_until
from ..gateway.conftest import gateway
from .conftest import ok


def failing(svc: Service, runs: list[str], broken: list[bool]) -> None:
    @svc.handler(max_attempts=2, backoff_base=0.01, backoff_max=0.01)
    async def charge(ctx: Context, n: int) -> int:
        runs.append(ctx.id)
        if broken[0]:
            raise RuntimeError("card declined")
        return n


async def test_an_always_failing_handler_is_parked_and_two_redrives_run_once(url: str, names: Names) -> None:
    svc, runs, broken = Service(names()), [], [True]
    failing(svc, runs, broken)
    async with running(svc, url), client(url) as c, gateway(url) as http:
        acc = await c.send(svc.name, "charge", 7)

        async def listed() -> Any:
            page = ok(await http.get(f"/admin/services/{svc.name}/parked"))
            return page if page["items"] else None

        page = await wait_until(listed, what="parked")
        [item] = page["items"]
        assert item["invocation_id"] == acc.id and item["handler"] == "charge"
        assert item["reason"] == "attempts-exhausted" and item["attempt"] == 2 and item["redrives"] == 0
        assert item["error"] == {"type": "RuntimeError", "message": "card declined", "status": None}
        assert page["total"] == 1 and page["archived"] is False and page["next_cursor"] is None
        minutes = ok(await http.get(f"/admin/services/{svc.name}"))["minutes"]
        assert len(minutes) == 15 and sum(m["failed"] for m in minutes) == 1
        assert sum(m["retried"] for m in minutes) == 1

        broken[0] = False
        before = len(runs)
        redrive = f"/admin/invocations/{acc.id}/redrive"
        first, second = await asyncio.gather(http.post(redrive), http.post(redrive))
        assert sorted(ok(r)["status"] for r in (first, second)) == ["not_failed", "redriven"]
        assert await c.result(acc.id, 10) == 7
        assert len(runs) == before + 1
        assert ok(await http.get(f"/admin/services/{svc.name}/parked"))["items"] == []

        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        kinds = [e["event"] for e in doc["timeline"]]
        assert kinds == [
            *("accepted", "claimed", "retry", "promoted", "claimed", "parked"),
            *("redriven", "claimed", "succeeded"),
        ]
        parked_event = doc["timeline"][kinds.index("parked")]
        assert parked_event["detail"] == "attempts-exhausted"
        assert doc["timeline"][kinds.index("retry")]["detail"] == "attempt 2"
        inv = doc["invocation"]
        assert inv["redrives"] == 1 and "card declined" in inv["error"]["traceback"]
        assert doc["parked"] is False and doc["archived"] is False


async def test_discard_moves_to_the_archive_and_redrive_recovers_it(url: str, names: Names) -> None:
    svc, broken = Service(names()), [True]

    @svc.handler
    async def ship(ctx: Context, n: int) -> int:
        if broken[0]:
            raise Terminal("address unknown", status=422)
        return n

    async with running(svc, url), client(url) as c, gateway(url) as http:
        acc = await c.send(svc.name, "ship", 3)
        await wait_until(lambda: c.parked(svc.name), what="parked")
        done = ok(await http.post(f"/admin/invocations/{acc.id}/discard"))
        assert (done["status"], done["changed"], done["state"]) == ("discarded", True, "failed")
        assert ok(await http.post(f"/admin/invocations/{acc.id}/discard"))["status"] == "not_parked"
        assert ok(await http.get(f"/admin/services/{svc.name}/parked"))["total"] == 0
        archive = ok(await http.get(f"/admin/services/{svc.name}/parked", params={"archived": "true"}))
        assert [(i["invocation_id"], i["reason"]) for i in archive["items"]] == [(acc.id, "terminal")]
        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        assert doc["archived"] is True and doc["parked"] is False and doc["invocation"]["discarded"]
        assert ok(await http.get(f"/admin/services/{svc.name}"))["archived"] == 1

        broken[0] = False
        assert ok(await http.post(f"/admin/invocations/{acc.id}/redrive"))["status"] == "redriven"
        assert await c.result(acc.id, 10) == 3
        archive = ok(await http.get(f"/admin/services/{svc.name}/parked", params={"archived": "true"}))
        assert archive["total"] == 0
        kinds = [e["event"] for e in ok(await http.get(f"/admin/invocations/{acc.id}"))["timeline"]]
        assert kinds[-4:] == ["discarded", "redriven", "claimed", "succeeded"]


async def test_retry_now_skips_the_backoff(url: str, names: Names) -> None:
    svc, runs = Service(names()), []

    @svc.handler
    async def sync_crm(ctx: Context) -> int:
        runs.append(ctx.attempt)
        if ctx.attempt == 1:
            raise Retry(delay=3600)
        return ctx.attempt

    async with running(svc, url), client(url) as c, gateway(url) as http:
        acc = await c.send(svc.name, "sync_crm")

        async def retrying() -> bool:
            return await c.state(acc.id) == "retrying"

        await wait_until(retrying, what="retrying")
        assert ok(await http.get(f"/admin/services/{svc.name}"))["delayed"] == 1
        r = ok(await http.post(f"/admin/invocations/{acc.id}/retry-now"))
        assert (r["status"], r["changed"]) == ("queued", True)
        assert await c.result(acc.id, 10) == 2
        assert ok(await http.post(f"/admin/invocations/{acc.id}/retry-now"))["status"] == "not_retrying"
        timeline = ok(await http.get(f"/admin/invocations/{acc.id}"))["timeline"]
        retry = next(e for e in timeline if e["event"] == "retry")
        assert retry["until"] - retry["at"] >= 3_500_000  # the backoff it skipped
        assert [e["event"] for e in timeline][-3:] == ["retry-now", "claimed", "succeeded"]
        assert runs == [1, 2]


async def test_bulk_redrive_is_bounded_and_filtered_by_handler(url: str, names: Names) -> None:
    svc, broken = Service(names()), [True]

    @svc.handler
    async def a(ctx: Context) -> str:
        if broken[0]:
            raise Terminal("no")
        return "a"

    @svc.handler
    async def b(ctx: Context) -> str:
        if broken[0]:
            raise Terminal("no")
        return "b"

    async with running(svc, url), client(url) as c, gateway(url) as http:
        ids = [(await c.send(svc.name, h)).id for h in ("a", "b", "a", "b", "a")]

        async def all_parked() -> bool:
            return len(await c.parked(svc.name)) == 5

        await wait_until(all_parked, what="5 parked")
        broken[0] = False
        path = f"/admin/services/{svc.name}/parked/redrive"
        # oldest parked first: the worker ran the five concurrently, so their park order (not
        # their send order) decides which two of handler a's three come first
        a_ids, b_ids = {ids[0], ids[2], ids[4]}, {ids[1], ids[3]}
        first = ok(await http.post(path, params={"handler": "a", "limit": 2}))
        assert len(first["redriven"]) == 2 and set(first["redriven"]) < a_ids
        assert first["next_cursor"] and first["remaining"] > 0  # with a handler: not examined yet
        second = ok(await http.post(path, params={"handler": "a", "limit": 2}))
        assert set(second["redriven"]) == a_ids - set(first["redriven"])
        assert (second["remaining"], second["next_cursor"]) == (0, None)  # the walk reached the end
        assert ok(await http.post(path, params={"handler": "a"}))["redriven"] == []
        rest = ok(await http.post(path))
        assert set(rest["redriven"]) == b_ids and rest["remaining"] == 0
        assert [await c.result(i, 10) for i in ids] == ["a", "b", "a", "b", "a"]
        log = ok(await http.get("/admin/audit", params={"service": svc.name, "limit": 3}))
        assert len(log["items"]) == 3 and log["next_cursor"] == log["items"][-1]["id"]
        older = ok(await http.get("/admin/audit", params={"service": svc.name, "cursor": log["next_cursor"]}))
        assert {x["target"] for x in log["items"] + older["items"]} == set(ids)
        assert {(x["who"], x["action"]) for x in log["items"] + older["items"]} == {("anonymous", "redrive")}
