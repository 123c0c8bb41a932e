"""Script loading and the promote script's safety with many concurrent promoters."""

import asyncio
import re
from pathlib import Path

from reliq.store.keys import ServiceKeys

from .conftest import Names, client

PKG = Path(__file__).resolve().parents[1] / "reliq"


def test_every_script_file_has_a_contract_header_and_no_python_writes_xadd() -> None:
    for lua in (PKG / "lua").glob("*.lua"):
        head = lua.read_text()
        assert "KEYS[1]" in head and "returns" in head, lua.name
        # keys only from KEYS: no key names built inside scripts
        assert "reliq:" not in head.replace("reliq:{S}", ""), lua.name
    for py in PKG.glob("*.py"):
        assert not re.search(r"\.xadd\(", py.read_text()), f"bare XADD in {py.name}: use a script"


async def test_concurrent_promoters_move_each_due_invocation_exactly_once(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        ids = [(await c.send(svc, "h", i, delay=0.05)).id for i in range(50)]
        await asyncio.sleep(0.1)  # let them become due (a precondition, not an outcome)
        moved = await asyncio.gather(*(c.scripts.promote(k, ids) for _ in range(8)))
        assert sum(moved) == 50
        assert await c.redis.xlen(k.stream) == 50
        assert await c.redis.zcard(k.delayed) == 0
        states = {await c.state(i) for i in ids}
        assert states == {"pending"}
        for i in ids:
            await c.cancel(i)


async def test_promote_leaves_invocations_that_are_not_due(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        acc = await c.send(svc, "h", None, delay=60)
        assert await c.scripts.promote(k, [acc.id]) == 0
        assert await c.redis.zscore(k.delayed, acc.id) is not None
        await c.cancel(acc.id)


async def test_scripts_are_reloaded_after_the_server_forgets_them(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        await c.redis.script_flush()
        acc = await c.send(svc, "h", None)  # EVALSHA -> NOSCRIPT -> reload
        assert (await c.get(acc.id)) is not None
        await c.cancel(acc.id)
