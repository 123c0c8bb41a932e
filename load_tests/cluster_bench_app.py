"""The no-op service of the Cluster benchmark; its name comes from ``RELIQ_BENCH_SERVICE`` (the
benchmark picks a name whose partitions land on distinct primaries)."""

import os

from reliq import App, Context, Service

bench = Service(os.environ.get("RELIQ_BENCH_SERVICE", "bench"))


@bench.handler
async def noop(ctx: Context) -> None:
    return None


app = App([bench])
