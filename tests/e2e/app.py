"""Handlers for the crash tests, run by real `reliq worker` subprocesses. Every execution is
written to a witness file outside Redis (one appended line each)."""

from __future__ import annotations

import asyncio
import os
import signal

from reliq import App, Context, Service

SERVICE = os.environ.get("RELIQ_E2E_SERVICE", "e2e")
WITNESS = os.environ.get("RELIQ_E2E_WITNESS", "/dev/null")

svc = Service(SERVICE)


def witness(event: str, inv: str) -> None:
    with open(WITNESS, "a") as f:
        f.write(f"{event} {inv} {os.getpid()}\n")


@svc.handler(max_attempts=3)
async def slow(ctx: Context, seconds: float) -> int:
    witness("start", ctx.id)
    await asyncio.sleep(seconds)
    await ctx.step("effect", witness, "effect", ctx.id)
    pid = await ctx.step("pid", os.getpid)
    return int(pid)


@svc.handler(max_deliveries=2)
async def suicide(ctx: Context) -> None:
    witness("run", ctx.id)
    os.kill(os.getpid(), signal.SIGKILL)


app = App([svc])
