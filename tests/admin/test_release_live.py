"""`release` refuses an entry whose holder is alive with a valid lease (`owner_alive`: nothing
written, not audited), so an operator cannot start a running handler a second time on another
worker; `force` (HTTP `?force=true`, CLI `--force`) releases it anyway. A dead holder (no
heartbeat) or a lapsed lease is released as before, in every partition (the heartbeat key is in
slot {S}, the entry in the partition's)."""

from __future__ import annotations

import contextlib
import json

import pytest
from redis.exceptions import ResponseError

from reliq import Client
from reliq.admin.actions import act
from reliq.admin.overview import pending, service_overview
from reliq.store.keys import GROUP, RELEASE_IDLE_MS, SERVICES

from ..conftest import Names, client
from ..gateway.conftest import gateway
from .partitioned import keys_in
from .test_cli import reliq


async def held(c: Client, svc: str, key: str, consumer: str, lease_ms: int) -> str:
    """An invocation claimed by ``consumer`` with a lease of ``lease_ms`` (no worker runs)."""
    inv = (await c.send(svc, "job", None, key=key)).id
    k = c.keys_of(inv)
    with contextlib.suppress(ResponseError):  # BUSYGROUP: made for an earlier one
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    [[_, [(eid, _f)]]] = await c.redis.xreadgroup(GROUP, consumer, {k.stream: ">"}, count=1)
    [claim] = await c.scripts.claim(k, consumer, lease_ms, [(eid.decode(), inv)])
    assert claim.status == "run"
    return inv


async def idle(c: Client, inv: str) -> int:
    k = c.keys_of(inv)
    entry = (await c.redis.hget(k.inv(inv), "entry")).decode()
    [row] = await c.redis.xpending_range(k.stream, GROUP, entry, entry, 1)
    return int(row["time_since_delivered"])


@pytest.mark.semantics
async def test_release_refuses_a_live_holder_unless_forced_in_every_partition(url: str, names: Names) -> None:
    svc = names("rel")
    async with client(url) as c:
        await c.set_partitions(svc, 2)
        k0, k1 = keys_in(svc, 2, "a")
        await c.redis.set(c.keys(svc).consumer("live"), b"{}", px=60_000)
        for key in (k0, k1):
            inv = await held(c, svc, key, "live", 60_000)
            k = c.keys_of(inv)
            before = await c.redis.hget(k.inv(inv), "tl")
            res = await act(c, "release", inv, who="ops")
            assert (res.status, res.changed, res.state) == ("owner_alive", False, "running")
            assert await c.redis.hget(k.inv(inv), "tl") == before
            assert await c.redis.xlen(k.audit) == 0  # a refusal is not audited
            assert await idle(c, inv) < RELEASE_IDLE_MS
            forced = await act(c, "release", inv, who="ops", force=True)
            assert (forced.status, forced.changed) == ("released", True)
            assert await idle(c, inv) >= RELEASE_IDLE_MS
            assert [f[b"result"] for _, f in await c.redis.xrange(k.audit)] == [b"released"]
            await c.cancel(inv)
        # a holder without a heartbeat, and a live holder whose lease ran out: released
        dead = await held(c, svc, "b0", "gone", 60_000)
        lapsed = await held(c, svc, "b1", "live", 1)
        await c.redis.hset(c.keys_of(lapsed).inv(lapsed), "lease_until", 1)
        for inv in (dead, lapsed):
            assert (await act(c, "release", inv, who="ops")).status == "released"
            await c.cancel(inv)
        await c.redis.delete(c.keys(svc).consumer("live"))


async def test_release_over_http_and_cli_says_owner_alive_and_force_releases(url: str, names: Names) -> None:
    svc = names("rel")
    async with client(url) as c, gateway(url) as http:
        await c.redis.sadd(SERVICES, svc)
        await c.redis.set(c.keys(svc).consumer("live"), b"{}", px=60_000)
        a, b = [await held(c, svc, key, "live", 60_000) for key in ("x", "y")]
        r = await http.post(f"/admin/invocations/{a}/release")
        assert r.status_code == 200 and r.json()["status"] == "owner_alive" and not r.json()["changed"]
        assert (await http.post(f"/admin/invocations/{a}/release?force=maybe")).status_code == 400
        r = await http.post(f"/admin/invocations/{a}/release?force=true")
        assert r.status_code == 200 and r.json()["status"] == "released"
        code, out = await reliq(url, "release", b)
        assert code == 1 and len(out.strip().splitlines()) == 1 and "owner_alive" in out and "--force" in out
        assert await idle(c, b) < RELEASE_IDLE_MS
        code, out = await reliq(url, "release", b, "--force", "--json")
        assert code == 0 and json.loads(out)["status"] == "released", out
        log = [(f[b"target"], f[b"result"]) for _, f in await c.redis.xrange(c.keys(svc).audit)]
        assert log == [(a.encode(), b"released"), (b.encode(), b"released")]
        for inv in (a, b):
            await c.cancel(inv)
        await c.redis.delete(c.keys(svc).consumer("live"))
        await c.redis.srem(SERVICES, svc)


async def test_a_released_entry_shows_reclaimable_now_with_no_sentinel_idle(url: str, names: Names) -> None:
    svc = names("rel")
    async with client(url) as c:
        await c.redis.sadd(SERVICES, svc)
        first = await held(c, svc, "x", "gone", 60_000)  # its holder has no heartbeat: dead
        other = await held(c, svc, "y", "gone", 60_000)
        assert (await act(c, "release", first, who="ops")).status == "released"
        page = await pending(c, svc)
        rows = {e.invocation_id: e for e in page.items}
        assert rows[first].released and rows[first].reclaim_in_ms == 0
        assert 0 <= rows[first].idle_ms <= page.now - int(rows[first].entry_id.split("-")[0]) < 60_000
        assert not rows[other].released and 50_000 < (rows[other].reclaim_in_ms or 0) <= 60_000
        oldest = (await service_overview(c, svc)).oldest_pending
        assert oldest is not None and oldest.idle_ms <= oldest.age_ms < 60_000
        for inv in (first, other):
            await c.cancel(inv)
        await c.redis.srem(SERVICES, svc)
