"""``Debounce``, ``Debounce-Key`` and ``Debounce-Mode`` on ``/send`` and ``/call``: sends with one
key within the window join one invocation (the answer names it, ``status`` ``debounced``), which
runs once after the window with the latest body (debounce) or the first (throttle). Bad headers
are in ``test_write_routes_4xx`` (400, nothing written)."""

from __future__ import annotations

import asyncio

import msgspec

from reliq import Context, Service

from ..conftest import Names, client, running
from .conftest import gateway


async def test_debounce_headers_collapse_sends_into_one_run(url: str, names: Names) -> None:
    svc, runs = Service(names()), []

    @svc.handler
    async def bump(ctx: Context, n: int) -> int:
        runs.append(n)
        return n

    async with gateway(url, svc) as http, client(url) as c, running(svc, url):
        answers = {}
        for mode, window in (("debounce", "0.6s"), ("throttle", "1.5")):
            headers = {"debounce": window, "debounce-key": mode, "debounce-mode": mode}
            for n in range(20):
                r = await http.post(f"/send/{svc.name}/bump", json=n, headers=headers)
                assert r.status_code == 202, r.text
                answers.setdefault(mode, []).append(r.json())
                await asyncio.sleep(0.02)  # pacing the sends, not waiting for an outcome
        for mode, expected in (("debounce", 19), ("throttle", 0)):
            docs = answers[mode]
            assert {d["id"] for d in docs} == {docs[0]["id"]}
            assert [d["status"] for d in docs] == ["accepted"] + ["debounced"] * 19
            assert await c.result(docs[0]["id"], timeout=15) == expected
        assert sorted(runs) == [0, 19]
        # /call joins the window too, and waits for the one run
        headers = {"debounce": "0.3s", "debounce-key": "c", "prefer": "wait=10"}
        first, second = await asyncio.gather(
            http.post(f"/call/{svc.name}/bump", json=1, headers=headers),
            http.post(f"/call/{svc.name}/bump", json=2, headers=headers),
        )
        assert first.status_code == second.status_code == 200, (first.text, second.text)
        assert first.headers["reliq-invocation-id"] == second.headers["reliq-invocation-id"]
        assert first.json() == second.json() and len(runs) == 3


class Acct(msgspec.Struct):
    account: str


async def test_a_debounced_send_carries_the_callable_key_the_gateway_computed(url: str, names: Names) -> None:
    """With the App's code the gateway computes a callable concurrency key for a debounced send as
    for any other: the window's record names the key, so its promotion passes that key's gate."""
    svc = Service(names())

    @svc.handler(concurrency_key=lambda req: req.account.upper(), concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None: ...

    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the spec
            pass
        async with gateway(url, svc) as http:
            headers = {"debounce": "30s", "debounce-key": "d"}
            r = await http.post(f"/send/{svc.name}/work", json={"account": "a"}, headers=headers)
            assert r.status_code == 202, r.text
        fk = await c.redis.hget(c.keys(svc.name).inv(r.json()["id"]), "fk")
        assert fk == b"work\0A"
