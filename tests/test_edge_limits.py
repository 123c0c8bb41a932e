"""The library's share of issue 12: ``Client.send(at=...)`` follows the gateway's rules (aware,
representable, at most 366 days ahead), W3C traceparents the spec says to ignore are ignored, and
the per-name caches stay bounded whatever names are asked for."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reliq import tracing
from reliq.client.cache import LRU, MAX_NAMES
from reliq.client.producer import MAX_DELAY

from .conftest import Names, client

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_send_at_must_be_aware_representable_and_within_366_days(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        bad = {
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC): "366 days",
            datetime.now(UTC) + timedelta(days=367): "366 days",
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))): "representable",
            datetime(2026, 1, 1): "aware",  # naive
        }
        for at, why in bad.items():
            with pytest.raises(ValueError, match=why):
                await c.send(svc, "h", None, at=at)
        with pytest.raises(ValueError, match="366 days"):
            await c.send(svc, "h", None, delay=MAX_DELAY + 1)
        assert not await c.redis.exists(c.keys(svc).stream)  # none of them placed anything
        soon = datetime.now(UTC) + timedelta(days=365)
        placed = await c.send(svc, "h", None, at=soon)
        inv = await c.get(placed.id)
        assert inv is not None and inv.state == "scheduled" and inv.due == int(soon.timestamp() * 1000)
        await c.cancel(placed.id)


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (TP, TP),
        (f"  {TP} ", TP),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later-fields", TP.replace("00-", "01-", 1)),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""),  # version ff is invalid
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""),  # all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""),  # all-zero parent id
        (TP + "-extra", ""),  # version 00 has exactly four fields
        (TP.upper(), ""),  # hex is lowercase
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", ""),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", ""),
        ("garbage", ""),
        ("", ""),
    ],
)
def test_traceparents_the_w3c_spec_says_to_ignore_are_ignored(header: str, kept: str) -> None:
    assert tracing.valid_traceparent(header) == kept


async def test_per_name_caches_stay_bounded_under_random_names(url: str) -> None:
    async with client(url) as c:
        for _ in range(5000):
            name = "n" + uuid.uuid4().hex
            c.keys(name)
            c.keys_of(f"{name}.aaaaaaaaaaaaaaaaaaaaaaaaaa")
            await c.layout(name)
        assert len(c._keys) == MAX_NAMES and len(c._layouts) == MAX_NAMES
        hot = c.keys("hot")
        for i in range(3 * MAX_NAMES):  # the recently used entry survives the churn
            assert c.keys("hot") is hot
            c.keys(f"cold{i}")
        assert len(c._keys) == MAX_NAMES


def test_lru_evicts_the_least_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    lru["a"], lru["b"] = 1, 2
    assert lru.get("a") == 1  # a is now the most recent
    lru["c"] = 3
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)
    with pytest.raises(ValueError):
        LRU(0)
