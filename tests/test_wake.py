"""``reliq.client.waiters.Wake``: the flag a waiter sleeps on (set before, set during, the
deadline, cancellation), without ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import time

import pytest

from reliq.client.waiters import Wake


async def test_a_set_flag_returns_at_once_and_stays_set_until_cleared() -> None:
    w = Wake()
    w.set()
    t0 = time.monotonic()
    await w.wait(10)
    assert time.monotonic() - t0 < 1 and w.is_set()
    w.clear()
    assert not w.is_set()


async def test_set_during_the_wait_wakes_the_sleeper() -> None:
    w = Wake()
    sleeper = asyncio.create_task(w.wait(30))
    await asyncio.sleep(0)  # the sleeper is waiting now
    w.set()
    await asyncio.wait_for(sleeper, 5)  # woken, long before its 30 s
    assert w.is_set()


async def test_the_deadline_ends_the_wait_without_an_error() -> None:
    w = Wake()
    t0 = time.monotonic()
    await w.wait(0.05)
    assert 0.04 <= time.monotonic() - t0 < 5 and not w.is_set()
    w.set()  # after the deadline: nothing left to wake, no error
    assert w.is_set()


async def test_a_cancelled_sleeper_can_sleep_again_and_a_later_set_is_harmless() -> None:
    w = Wake()
    sleeper = asyncio.create_task(w.wait(30))
    await asyncio.sleep(0)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    again = asyncio.create_task(w.wait(30))
    await asyncio.sleep(0)
    w.set()  # wakes the new sleeper, not the cancelled one's future
    await asyncio.wait_for(again, 5)
