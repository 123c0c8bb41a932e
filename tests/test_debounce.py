"""Debounce and throttle (``Client.send(debounce=..., debounce_key=..., mode=...)``): 100 sends
over about a second with one key collapse into one invocation that runs once, after the window,
with the latest payload (debounce) or the first (throttle); a send after that opens a new window;
bad input is a ValueError and writes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reliq import Context, Service

from .conftest import Names, client, running, wait_until
from .flow_util import ends, mark, replay
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


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def keyed(name: str, witness: Path, key: Any) -> tuple[Service, Any]:
    svc = Service(name)

    @svc.handler(concurrency_key=key, concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        await asyncio.sleep(0.02)  # a window in which a second holder of the key would show
        mark(witness, "E", req.account, req.n)

    return svc, work


@pytest.mark.parametrize("key", ["account", lambda req: req.account], ids=["field", "callable"])
async def test_debounced_sends_pass_the_concurrency_gate_of_their_key(
    url: str, names: Names, tmp_path: Path, key: Any
) -> None:
    """Eight windows (eight debounce keys) of one account, due together: their promotions queue
    behind the key's permit, one runs at a time (a callable key's value travels with the window)."""
    witness = tmp_path / "witness"
    svc, work = keyed(names(), witness, key)
    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the spec
            pass
        for i in range(8):
            sent = await c.send(work, Acct(account="a", n=i), debounce=0.3, debounce_key=f"d{i}")
            assert sent.status == "accepted"
        async with running(svc, url, concurrency=20):
            await wait_until(lambda: ends(witness) == 8, timeout=20, what="all 8 windows ran")
    most, order = replay(witness)
    assert most["a"] == 1 and sorted(order["a"]) == list(range(8))


async def test_a_debounced_send_without_its_callable_key_is_refused(
    url: str, names: Names, tmp_path: Path
) -> None:
    svc, _ = keyed(names(), tmp_path / "w", lambda req: req.account)
    async with client(url) as c:
        async with running(svc, url, concurrency=1):
            pass
        tag = b"{" + svc.name.encode() + b"}"  # this service's keys (other tests share the server)
        before = sorted(k for k in await keyspace(url) if tag in k)
        with pytest.raises(ValueError, match="flow key"):  # by name: no code computed the key
            await c.send(svc.name, "work", {"account": "a"}, debounce=0.3, debounce_key="d")
        # no window, no record, no delayed member
        assert sorted(k for k in await keyspace(url) if tag in k) == before


@pytest.mark.parametrize("mode", ["debounce", "throttle"])
async def test_a_window_delayed_by_the_rate_limit_is_not_started_early_by_a_join(
    url: str, names: Names, mode: str
) -> None:
    """A window that has ended and waits for its rate-limit slot (review 3, finding 3): a
    debounce send opens a new window (a join would have moved its due time to now + window, and
    promote, not charging a reservation twice, started it minutes early); a throttle send joins
    it and changes nothing, its due time included."""
    svc = Service(names())

    @svc.handler(rate_limit="1/min")
    async def bump(ctx: Context, n: int) -> int:
        return n

    async with client(url) as c, running(svc, url):
        assert await c.result((await c.send(svc.name, "bump", 0)).id, timeout=10) == 0  # the bucket's slot
        first = await c.send(svc.name, "bump", 1, debounce=0.3, debounce_key="k", mode=mode)

        async def rate_delayed() -> Any:
            doc = await c.get(first.id)
            return doc if doc is not None and doc.waiting_for == "rate" else None

        doc = await wait_until(rate_delayed, what="the ended window to wait for its rate slot")
        assert doc.state == "scheduled" and doc.wait_until is not None
        reserved = doc.wait_until
        again = await c.send(svc.name, "bump", 2, debounce=0.3, debounce_key="k", mode=mode)
        if mode == "debounce":
            assert again.status == "accepted" and again.id != first.id  # before: 'debounced', joined
        else:
            assert again.status == "debounced" and again.id == first.id
        after = await c.get(first.id)
        assert after is not None and after.state == "scheduled" and after.due == reserved
        assert after.payload == 1
