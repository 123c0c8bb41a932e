"""Upgrade in place: a Valkey data dir written by release e0a15e4 (before the package
restructuring; see tests/fixtures/README.md) is served by today's server, worker and client.
The fixture holds queued, delayed, retrying-with-a-journaled-step, parked and keyed invocations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reliq import Context, Service
from reliq.devserver.embedded import EmbeddedValkey

from ..conftest import client, running

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade-e0a15e4"
SERVICE = "upgrade"
PAYLOADS = {"pending0": 0, "pending1": 1, "pending2": 2, "delayed": 100, "keyed": 200}


def handlers(charged: list[int]) -> Service:
    """Today's handlers under the names the old release registered the work with."""
    svc = Service(SERVICE)

    @svc.handler
    async def echo(ctx: Context, n: int) -> int:
        return n

    def charge(n: int) -> int:
        charged.append(n)
        return n * 10

    @svc.handler
    async def journal(ctx: Context, n: int) -> int:
        return int(await ctx.step("charge", charge, n))

    @svc.handler(max_attempts=1)
    async def fail(ctx: Context, n: int) -> int:  # fixed since the old release parked it
        return -n

    return svc


async def test_a_data_dir_written_by_the_previous_release_is_served(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "appendonlydir", tmp_path / "appendonlydir")
    ids: dict[str, str] = json.loads((FIXTURE / "ids.json").read_text())
    charged: list[int] = []
    with EmbeddedValkey(data_dir=tmp_path) as server:
        async with client(server.url) as c:
            before = {name: await c.state(inv) for name, inv in ids.items()}
            assert before == {
                "pending0": "pending",
                "pending1": "pending",
                "pending2": "pending",
                "delayed": "scheduled",
                "keyed": "pending",
                "journal": "retrying",
                "parked": "failed",
            }
            assert ids["parked"] in await c.parked(SERVICE)
            again = await c.send(SERVICE, "echo", 200, key="order-1")
            assert (again.id, again.status) == (ids["keyed"], "previously_accepted")

            async with running(handlers(charged), server.url):
                for name, n in PAYLOADS.items():
                    assert await c.result(ids[name], timeout=30) == n, name
                assert await c.result(ids["journal"], timeout=30) == 70
                assert await c.redrive(ids["parked"]) == "redriven"
                assert await c.result(ids["parked"], timeout=30) == -3

            assert charged == []  # the step journaled by the old release was not run again
            journal = await c.get(ids["journal"])
            assert journal is not None and journal.steps == {"charge": 70} and journal.attempt == 2
            delayed = await c.get(ids["delayed"])
            assert delayed is not None and delayed.due and delayed.started
            assert delayed.started >= delayed.due
            parked = await c.get(ids["parked"])
            assert parked is not None and parked.redrives == 1 and parked.state == "succeeded"
            assert ids["parked"] not in await c.parked(SERVICE)
