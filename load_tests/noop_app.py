"""A no-op service for the drain benchmark, and a typed one for the gateway that validates
against the registry (bench_gateway's row (c2))."""

import msgspec

from reliq import Context, Service

bench = Service("bench")


class Item(msgspec.Struct, forbid_unknown_fields=True):
    sku: str
    qty: int


@bench.handler
async def noop(ctx: Context) -> None:
    return None


@bench.handler
async def typed(ctx: Context, item: Item) -> None:
    return None
