"""A no-op service for the drain benchmark."""

from reliq import Context, Service

bench = Service("bench")


@bench.handler
async def noop(ctx: Context) -> None:
    return None
