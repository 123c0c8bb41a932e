"""Handlers for the dashboard browser test, run by real `reliq worker` subprocesses: one that hangs
(so SIGKILL leaves its entry pending with a dead owner), and one that fails until a marker file
exists (so it ends parked, and a redrive after the marker appears succeeds), and one a schedule
fires."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from reliq import App, Context, Service, SyncContext

SERVICE = os.environ.get("RELIQ_DASH_SERVICE", "dash")
MARKER = Path(os.environ.get("RELIQ_DASH_MARKER", "/nonexistent/marker"))

svc = Service(SERVICE)


@svc.handler
async def hang(ctx: Context, order: str) -> str:
    await ctx.step("reserve", lambda: f"reserved {order}")
    await asyncio.sleep(3600)
    return order


@svc.handler(max_attempts=1)
def charge(ctx: SyncContext, order: str) -> str:  # sync: runs in the worker's thread pool
    if not MARKER.exists():
        raise RuntimeError(f"card declined for {order}")
    return f"charged {order}"


@svc.handler
async def ping(ctx: Context) -> str:  # what the schedules test's schedule fires
    return "pong"


app = App([svc])
