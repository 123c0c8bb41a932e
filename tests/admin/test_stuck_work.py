"""Stuck work as an operator sees it: a SIGKILLed worker's entry in /admin pending with its owner
dead; `release` hands it to another worker at once; the timeline tells the whole story."""

from __future__ import annotations

from typing import Any

from reliq import Client
from reliq.store.keys import ServiceKeys

from ..conftest import wait_until
from ..gateway.conftest import gateway
from .conftest import Workers, ok


async def test_a_dead_workers_entry_is_pending_with_owner_dead_and_release_hands_it_over(
    url: str, workers: Workers
) -> None:
    svc = workers.service
    async with Client(url) as c, gateway(url) as http:
        a = workers.start("a")
        await wait_until(lambda: c.redis.exists(ServiceKeys(svc).consumer("a")), timeout=30, what="a up")
        acc = await c.send(svc, "slow", 4.0)
        await wait_until(lambda: workers.events("start"), what="handler started in a")
        a.kill()
        a.wait()

        async def owner_dead() -> Any:
            page = ok(await http.get(f"/admin/services/{svc}/pending"))
            return page if page["items"] and not page["items"][0]["owner_alive"] else None

        page = await wait_until(owner_dead, what="the owner shown dead")
        [item] = page["items"]
        assert item["invocation_id"] == acc.id and item["handler"] == "slow" and item["owner"] == "a"
        assert item["state"] == "running" and item["epoch"] == 1 and item["deliveries"] == 1
        assert item["attempt"] == 1 and item["lost"] is False and item["step"] is None
        assert 0 < item["reclaim_in_ms"] <= 30_000  # a's lease (30 s) is not over yet
        assert page["total"] == 1 and page["next_cursor"] is None
        for params in ({"consumer": "nobody"}, {"min_idle_ms": 3_600_000}, {"handler": "other"}):
            assert ok(await http.get(f"/admin/services/{svc}/pending", params=params))["items"] == []

        one = ok(await http.get(f"/admin/services/{svc}"))
        assert one["pending"] == 1 and one["oldest_pending"]["owner"] == "a" and one["lag"] == 0
        assert [(x["name"], x["alive"], x["pending"]) for x in one["consumers"]] == [("a", False, 1)]
        everything = ok(await http.get("/admin/services"))
        assert one["service"] in [s["service"] for s in everything["services"]]
        assert everything["durability"]["level"] == "fsync"

        released = ok(await http.post(f"/admin/invocations/{acc.id}/release"))
        assert (released["status"], released["changed"], released["state"]) == ("released", True, "running")
        again = ok(await http.post(f"/admin/invocations/{acc.id}/release"))
        assert (again["status"], again["changed"]) == ("already_released", False)

        b = workers.start("b")  # visibility timeout 30 s: only a released entry is taken this soon
        assert await c.result(acc.id, 25) == b.pid

        doc = ok(await http.get(f"/admin/invocations/{acc.id}"))
        events = [(e["event"], e["actor"], e["epoch"]) for e in doc["timeline"]]
        assert events == [
            ("accepted", None, None),
            ("claimed", "a", 1),
            ("released", "anonymous", None),
            ("reclaimed", "b", 2),
            ("step", "b", 2),
            ("step", "b", 2),
            ("succeeded", "b", 2),
        ]
        assert [e["detail"] for e in doc["timeline"] if e["event"] == "step"] == ["effect", "pid"]
        times = [e["at"] for e in doc["timeline"]]
        assert times == sorted(times)
        inv = doc["invocation"]
        assert inv["crashes"] == 1 and inv["deliveries"] == 2 and inv["steps"]["pid"] == b.pid
        assert doc["pending_entry"] is None and doc["parent"] is None and doc["children"] == []

        log = ok(await http.get("/admin/audit", params={"service": svc}))["items"]
        assert [(x["who"], x["action"], x["target"], x["result"]) for x in log] == [
            ("anonymous", "release", acc.id, "already_released"),
            ("anonymous", "release", acc.id, "released"),
        ]
    assert workers.events("effect") == [acc.id]  # the effect ran once, in b
