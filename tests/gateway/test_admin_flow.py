"""The flow-control admin API (issue 14): the limits document and the waiting list over HTTP, a
live change and its clear, and bad input: 400 for a body that is not the change object, 422 for
a value the library refuses, 404 for an unknown service or handler name; nothing written."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from reliq import Backpressure, Context, Service

from ..conftest import Names, client, running
from .conftest import gateway
from .test_write_routes_4xx import keyspace


class Acct(msgspec.Struct):
    account: str


def _svc(names: Names) -> Service:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1, rate_limit="1/h", burst=2)
    async def work(ctx: Context, req: Acct) -> None: ...

    return svc


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_limits_waiting_and_a_live_change_over_http(url: str, names: Names) -> None:
    svc = _svc(names)
    async with running(svc, url):  # publishes the specs
        pass
    async with gateway(url) as http, client(url) as c:
        ids = [(await c.send(svc.name, "work", {"account": "a"})).id for _ in range(3)]
        doc = (await http.get(f"/admin/services/{svc.name}/limits")).json()
        [h] = doc["handlers"]
        assert h["code"] == {"key": "account", "limit": 1, "rate": 1, "per": 3_600_000, "burst": 2}
        assert h["override"] is None and h["text"] == "1 at once per account; 1/h, burst 2"
        assert doc["top_keys"] == [
            {"handler": "work", "key": "a", "running": 1, "waiting": 1, "partition": 0}
        ]
        [bucket] = doc["buckets"]
        assert doc["intake"]["backlog"] == {"high": 0, "normal": 1, "low": 0}
        assert doc["intake"]["source"] == "none" and doc["intake"]["max_queued"] is None
        assert bucket["handler"] == "work" and bucket["key"] is None and bucket["tokens"] == 0
        page = (await http.get(f"/admin/services/{svc.name}/waiting", params={"handler": "work"})).json()
        texts = [w["reason"]["text"] for w in page["items"]]  # the third is over the rate
        assert texts[0] == "concurrency key a, 0 ahead (1 running)" and len(texts) == 2
        assert texts[1].startswith("rate limit until ") and page["items"][1]["invocation_id"] == ids[2]
        later = await c.send(svc.name, "work", {"account": "b"}, delay=3600)
        ids.append(later.id)
        scrape = (await http.get("/metrics")).text
        for cause, n in (("concurrency", 1), ("rate", 1), ("scheduled", 1)):
            assert f'reliq_waiting{{cause="{cause}",service="{svc.name}"}} {n}.0' in scrape, scrape
        for level, n in (("high", 0), ("normal", 1), ("low", 0)):  # the admitted one's entry
            line = f'reliq_service_backlog_priority{{priority="{level}",service="{svc.name}"}} {n}.0'
            assert line in scrape, scrape
        r = await http.post(f"/admin/services/{svc.name}/limits/work", json={"concurrency_limit": 3})
        assert r.status_code == 200, r.text
        assert r.json()["effective"]["limit"] == 3 and r.json()["override"] == {"limit": 3}
        after = (await http.get(f"/admin/services/{svc.name}/limits")).json()
        assert after["top_keys"][0]["running"] == 2 and after["queued"] == 0  # admitted by the change
        r = await http.post(f"/admin/services/{svc.name}/limits/work/clear")
        assert r.status_code == 200 and r.json()["override"] is None
        for i in ids:
            await c.cancel(i)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("limits/work", b"not json", 400),
        ("limits/work", b"[1]", 400),
        ("limits/work", b'{"concurrency_limit": "2"}', 400),
        ("limits/work", b'{"limit": 2}', 400),
        ("limits/work", b"{}", 422),
        ("limits/work", b'{"concurrency_limit": -1}', 422),
        ("limits/work", b'{"rate_limit": "100/fortnight"}', 422),
        ("limits/work", b'{"burst": 0}', 422),
        ("limits/nope", b'{"burst": 2}', 422),
        ("limits/No.Such", b'{"burst": 2}', 404),
        ("intake", b"not json", 400),
        ("intake", b"{}", 400),
        ("intake", b'{"max_queued": "lots"}', 400),
        ("intake", b'{"max_queued": true}', 400),
        ("intake", b'{"max_queued": 5, "more": 1}', 400),
        ("intake", b'{"max_queued": -1}', 422),
        ("intake", b'{"max_queued": 9007199254740992}', 422),  # the CLI's bound too (2**53 - 1)
        ("intake", b'{"max_queued": 1000000000000000000000000000000}', 422),
    ],
)
async def test_a_bad_change_is_a_problem_and_writes_nothing(
    url: str, names: Names, path: str, body: bytes, status: int
) -> None:
    svc = _svc(names)
    async with running(svc, url):
        pass
    async with gateway(url) as http:
        before = await keyspace(url, svc.name)
        r = await http.post(
            f"/admin/services/{svc.name}/{path}",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert await keyspace(url, svc.name) == before
        unknown: Any = await http.get("/admin/services/nosuch/limits")
        assert unknown.status_code == 404
        assert (await http.post("/admin/services/nosuch/intake", json={"max_queued": 1})).status_code == 404
        bad = await http.get(f"/admin/services/{svc.name}/waiting", params={"key": "a"})
        assert bad.status_code == 400  # a key needs its handler


async def test_max_queued_is_changed_over_http_and_audited(url: str, names: Names) -> None:
    svc = Service(names(), max_queued=100)

    @svc.handler
    async def job(ctx: Context) -> None: ...

    async with running(svc, url):  # publishes the code's max_queued
        pass
    async with gateway(url) as http, client(url) as c:
        path = f"/admin/services/{svc.name}/intake"
        r = await http.post(path, json={"max_queued": 1})
        assert r.status_code == 200, r.text
        assert (r.json()["max_queued"], r.json()["source"], r.json()["code"]) == (1, "override", 100)
        await c.send(svc.name, "job")
        with pytest.raises(Backpressure):  # the next registration sees it
            await c.send(svc.name, "job")
        r = await http.post(path, json={"max_queued": "none"})
        assert (r.json()["max_queued"], r.json()["source"]) == (None, "override")
        await c.send(svc.name, "job")
        r = await http.post(path, json={"max_queued": "code"})
        assert (r.json()["max_queued"], r.json()["source"]) == (100, "code")
        log = (await http.get("/admin/audit", params={"service": svc.name})).json()["items"]
        assert [(e["action"], e["result"]) for e in log] == [
            ("max-queued-set", "code"),
            ("max-queued-set", "none"),
            ("max-queued-set", "1"),
        ]
