"""Checked by mypy in test_context_types.py, never imported: ``ctx.step`` keeps the step
function's argument and return types, on both contexts, and both satisfy ``AnyContext``. Lines
marked ``# error`` must be reported; nothing else may be."""

from typing import assert_type

from reliq import Accepted, Client, Context, SyncClient, SyncContext
from reliq.context import AnyContext


async def charge(order: str, cents: int) -> dict[str, int]:
    return {order: cents}


def reserve(order: str, *, slot: int = 0) -> int:
    return slot


def describe(ctx: AnyContext) -> str:
    return f"{ctx.service}.{ctx.handler} {ctx.id} attempt {ctx.attempt} epoch {ctx.epoch}"


async def async_handler(ctx: Context) -> None:
    assert_type(await ctx.step("charge", charge, "o1", 500), dict[str, int])
    assert_type(await ctx.step("reserve", reserve, "o1", slot=3), int)
    assert_type(describe(ctx), str)
    await ctx.step("charge", charge, "o1", "500")  # error
    await ctx.step("reserve", reserve, "o1", place=3)  # error


def sync_handler(ctx: SyncContext) -> None:
    assert_type(ctx.step("reserve", reserve, "o1"), int)
    assert_type(ctx.step("charge", charge, "o1", 500), dict[str, int])
    assert_type(describe(ctx), str)
    ctx.step("reserve", reserve, 1)  # error


class PlaceOrder:
    def __init__(self, sku: str) -> None:
        self.sku = sku


class Receipt:
    total: int = 0


async def place(ctx: Context, order: PlaceOrder) -> Receipt:
    return Receipt()


async def parent_handler(ctx: Context) -> None:
    # a handler reference: the payload is checked against its input, the result typed as it returns
    assert_type(await ctx.call(place, PlaceOrder("a")), Receipt)
    await ctx.call(place, "not an order")  # error


async def producer(client: Client) -> None:
    assert_type(await client.call(place, PlaceOrder("a")), Receipt)
    await client.send(place, PlaceOrder("a"))
    await client.send(place, 42)  # error
    assert_type(await client.send_many(place, [PlaceOrder("a"), PlaceOrder("b")]), list[Accepted])
    await client.send_many(place, [PlaceOrder("a"), 42])  # error
    assert_type(await client.send_many("orders", "place", [{"sku": "a"}], keys=["k"]), list[Accepted])
    await client.send_many("orders", "place", [{"sku": "a"}], keys="k", delay="soon")  # error


def sync_producer(client: SyncClient) -> None:
    assert_type(client.send_many(place, [PlaceOrder("a")], priority="high"), list[Accepted])
    client.send_many(place, ["not an order"])  # error


async def sender(ctx: Context) -> None:
    assert_type(await ctx.send(place, PlaceOrder("a")), str)
    await ctx.send(place, 7)  # error
