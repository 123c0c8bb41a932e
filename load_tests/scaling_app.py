"""``BENCH_SERVICES`` services (``scale0`` .. ``scaleK-1``), each with one no-op handler, for the
scaling benchmark (load_tests/bench_scaling.py)."""

import os

from reliq import App, Context, Service

services = [Service(f"scale{i}") for i in range(int(os.environ.get("BENCH_SERVICES", "1")))]


for service in services:  # a function of its own per service (a handler is marked with its target)

    @service.handler
    async def noop(ctx: Context) -> None:
        return None


app = App(services)
