"""The gateway on a partitioned service (one server): group commit per partition, keys pick the
partition, retries converge, and every read path (status, output, cancel, metrics) finds the
invocation from its id."""

from __future__ import annotations

import asyncio

from reliq import Context, Service
from reliq.store.keys import partition_of

from ..conftest import Names, client, running
from .conftest import gateway


async def test_sends_spread_over_partitions_and_every_read_path_finds_them(url: str, names: Names) -> None:
    svc = Service(names(), partitions=3)

    @svc.handler
    async def echo(ctx: Context, n: int) -> int:
        return n

    async with running(svc, url), gateway(url, svc) as http, client(url) as c:
        assert (await c.layout(svc.name, fresh=True)).partitions == 3
        sends = [
            http.post(f"/send/{svc.name}/echo", json=i, headers={"Idempotency-Key": f"k{i}"})
            for i in range(40)
        ]
        answers = await asyncio.gather(*sends)  # concurrent: batched per partition
        assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
        ids = [r.json()["id"] for r in answers]
        assert {partition_of(i) for i in ids} == {0, 1, 2}
        again = await http.post(f"/send/{svc.name}/echo", json=7, headers={"Idempotency-Key": "k7"})
        assert again.json() == {**answers[7].json(), "status": "previously_accepted"}
        for n, i in enumerate(ids):
            out = await http.get(f"/invocations/{i}/attach?wait=10")
            assert out.status_code == 200 and out.json() == n
            doc = (await http.get(f"/invocations/{i}")).json()
            assert doc["state"] == "succeeded" and doc["id"] == i
        assert (await http.post(f"/invocations/{ids[0]}/cancel")).status_code == 409  # found, terminal
        r = await http.post(f"/call/{svc.name}/echo", json=99, headers={"Idempotency-Key": "c1"})
        assert r.status_code == 200 and r.json() == 99


async def test_metrics_and_backlog_limits_count_every_partition(url: str, names: Names) -> None:
    svc = Service(names(), partitions=4)

    @svc.handler
    async def echo(ctx: Context, n: int) -> int:
        return n

    async with running(svc, url):
        pass  # publishes the layout and the registry, then stops: nothing consumes the sends
    async with client(url) as c:
        ids = [(await c.send(svc.name, "echo", i, key=f"m{i}")).id for i in range(12)]
        assert len({partition_of(i) for i in ids}) > 1
        async with gateway(url, svc, max_backlog=12) as http:
            metrics = (await http.get("/metrics")).text
            assert f'reliq_service_backlog{{service="{svc.name}"}} 12.0' in metrics
            full = await http.post(f"/send/{svc.name}/echo", json=0, headers={"Idempotency-Key": "over"})
            assert full.status_code == 429, full.text  # 12 waiting, spread over partitions
        for i in ids:
            await c.cancel(i)
