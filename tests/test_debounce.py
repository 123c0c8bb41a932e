"""Debounce and throttle (``Client.send(debounce=..., debounce_key=..., mode=...)``): 100 sends
over about a second with one key collapse into one invocation that runs once, after the window,
with the latest payload (debounce) or the first (throttle); a send after that opens a new window;
bad input is a ValueError and writes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reliq import Context, Service

from .conftest import Names, client, running, wait_until
from .gateway.test_write_routes_4xx import keyspace


def counter(name: str) -> tuple[Service, list[int]]:
    svc, runs = Service(name), []

    @svc.handler
    async def bump(ctx: Context, n: int) -> int:
        runs.append(n)
        return n

    return svc, runs


async def burst(c: Any, svc: Service, mode: str, window: float) -> list[Any]:
    """100 sends of 0..99 with one debounce key, 10 ms apart."""
    out = []
    for n in range(100):
        out.append(await c.send(svc.name, "bump", n, debounce=window, debounce_key="k", mode=mode))
        await asyncio.sleep(0.01)  # pacing the sends over ~1 s, not waiting for an outcome
    return out


@pytest.mark.semantics  # also on a Cluster: the key, the record and the delayed set share one slot
@pytest.mark.parametrize(("mode", "window", "expected"), [("debounce", 0.8, 99), ("throttle", 2.5, 0)])
async def test_a_burst_with_one_key_runs_once_after_the_window(
    url: str, names: Names, mode: str, window: float, expected: int
) -> None:
    svc, runs = counter(names())
    async with client(url) as c, running(svc, url):
        sent = await burst(c, svc, mode, window)
        assert {a.id for a in sent} == {sent[0].id}, "every send joined the one window"
        assert [a.status for a in sent] == ["accepted"] + ["debounced"] * 99
        assert runs == []  # nothing runs inside the window
        assert await c.result(sent[0].id, timeout=15) == expected
        assert runs == [expected]
        assert (await c.counts(svc.name)).delayed == 0
        again = await c.send(svc.name, "bump", 7, debounce=0.3, debounce_key="k", mode=mode)
        assert again.status == "accepted" and again.id != sent[0].id  # the window closed: a new one
        other = await c.send(svc.name, "bump", 8, debounce=0.3, debounce_key="other", mode=mode)
        assert other.status == "accepted" and other.id != again.id  # another key, another window
        await wait_until(lambda: len(runs) == 3, what="the two new windows to run")
        assert sorted(runs[1:]) == [7, 8]


BAD: list[dict[str, Any]] = [
    {"debounce": -1, "debounce_key": "k"},
    {"debounce": 0, "debounce_key": "k"},
    {"debounce": 10**9, "debounce_key": "k"},  # longer than a day
    {"debounce": float("nan"), "debounce_key": "k"},
    {"debounce": float("inf"), "debounce_key": "k"},
    {"debounce": "1", "debounce_key": "k"},
    {"debounce": 1, "debounce_key": ""},
    {"debounce": 1, "debounce_key": "a\tb"},
    {"debounce": 1, "debounce_key": "k" * 256},
    {"debounce": 1},
    {"debounce_key": "k"},
    {"debounce": 1, "debounce_key": "k", "mode": "sometimes"},
    {"debounce": 1, "debounce_key": "k", "key": "idem"},  # not an idempotency key
    {"debounce": 1, "debounce_key": "k", "delay": 5},
    {"debounce": 1, "debounce_key": "k", "reply_to": "bad/Name"},
]


async def test_bad_debounce_input_raises_and_writes_nothing(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        for opts in BAD:
            with pytest.raises(ValueError):
                await c.send(svc, "bump", 1, **opts)
        assert not [k for k in await keyspace(url) if svc.encode() in k]


async def test_concurrent_first_sends_converge_on_one_window(url: str, names: Names) -> None:
    """50 sends at once all read "no window", one opens it; the script answers the others
    ``moved`` and they join it on their next round."""
    svc, runs = counter(names())
    async with client(url) as c, running(svc, url):
        sent = await asyncio.gather(
            *(c.send(svc.name, "bump", n, debounce=0.5, debounce_key="k", mode="throttle") for n in range(50))
        )
        assert len({a.id for a in sent}) == 1
        assert sorted(a.status for a in sent) == ["accepted"] + ["debounced"] * 49
        first = next(a for a in sent if a.status == "accepted")
        assert await c.result(first.id, timeout=15) == runs[0] and len(runs) == 1
