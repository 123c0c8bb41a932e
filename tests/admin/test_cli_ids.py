"""The CLI's tables never cut an invocation id (`orders.u…`): the ids are what an operator copies
into `reliq inspect` and `reliq redrive`. Wide enough, an id stays whole on one line while the
other columns wrap; on a narrow terminal it folds over several lines, every character kept."""

from __future__ import annotations

import asyncio
import os
import sys

from reliq import Context, Service, Terminal

from ..conftest import Names, client, running, wait_until
from .conftest import ROOT


async def table(url: str, columns: int, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "reliq", "--redis-url", url, *args),
        cwd=ROOT,
        env={**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "…" not in text, text  # nothing cut, whatever the width
    assert max(len(line) for line in text.splitlines()) <= columns, text
    return text


PARKED, PENDING, AUDIT = 2, 3, 6  # where the id is: parked's 2nd column, pending's 3rd, audit's 6th


def column(text: str, index: int) -> str:
    """The cells of column ``index`` (1-based) of a one-row table, read top to bottom and joined."""
    return "".join(line.split("│")[index].strip() for line in text.splitlines() if line.startswith("│"))


def whole(text: str, index: int, value: str) -> bool:
    return column(text, index) == value and any(value in line for line in text.splitlines())


async def test_parked_pending_and_audit_tables_keep_ids_whole_or_folded(url: str, names: Names) -> None:
    svc = Service(names())
    release = asyncio.Event()

    @svc.handler
    async def label(ctx: Context) -> None:
        raise Terminal("printer on fire, the whole tray of labels gone up in smoke")

    @svc.handler
    async def hold(ctx: Context) -> None:
        await release.wait()

    async with client(url) as c:
        parked = (await c.send(svc.name, "label")).id
        async with running(svc, url):
            await wait_until(lambda: c.parked(svc.name), what="parked")
            held = (await c.send(svc.name, "hold")).id
            await wait_until(lambda: _is(c, held, "running"), what="hold running")
            for columns in (120, 110):  # wide enough: the id on one line, the rest wraps
                assert whole(await table(url, columns, "parked", svc.name), PARKED, parked)
                assert whole(await table(url, columns, "pending", svc.name), PENDING, held)
            for columns in (60, 40):  # too narrow for that: folded, complete
                text = await table(url, columns, "parked", svc.name)
                assert column(text, PARKED) == parked and parked not in text, text
                assert column(await table(url, columns, "pending", svc.name), PENDING) == held
            release.set()
        assert "discarded" in await table(url, 120, "discard", parked)  # audited: target = the id
        assert whole(await table(url, 120, "audit", "--service", svc.name), AUDIT, parked)


async def _is(c: object, inv: str, state: str) -> bool:
    return await c.state(inv) == state  # type: ignore[attr-defined, no-any-return]
