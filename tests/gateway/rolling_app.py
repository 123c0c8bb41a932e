"""Two releases of one handler for the rolling-deploy dashboard test: ``v1`` takes an int,
``v2`` a string (the service name comes from ``RELIQ_DASH_SERVICE``)."""

from __future__ import annotations

import os

from reliq import App, Context, Service

SERVICE = os.environ.get("RELIQ_DASH_SERVICE", "dash")
old, new = Service(SERVICE), Service(SERVICE)


@old.handler
async def take(ctx: Context, n: int) -> str:
    return f"v1 {n}"


@new.handler(name="take")
async def take_v2(ctx: Context, n: str) -> str:
    return f"v2 {n}"


v1, v2 = App([old]), App([new])
