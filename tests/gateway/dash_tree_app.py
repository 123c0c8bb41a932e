"""Handlers for the dashboard's function-tree test (real `reliq worker` subprocesses): a three-level
tree whose leaf waits for the promise ``approval``; every level suspends at once."""

from __future__ import annotations

import os

from reliq import App, Context, Service

svc = Service(os.environ.get("RELIQ_DASH_SERVICE", "dashtree"))


@svc.handler(suspend_after=0.0)
async def leaf(ctx: Context, order: str) -> str:
    return f"{order} approved by {await ctx.promise('approval')}"


@svc.handler(suspend_after=0.0)
async def mid(ctx: Context, order: str) -> str:
    return str(await ctx.call(leaf, order))


@svc.handler(suspend_after=0.0)
async def root(ctx: Context, order: str) -> str:
    return str(await ctx.call(mid, order))


app = App([svc])
