"""Handlers for the tree crash tests, run by real `reliq worker` subprocesses. Side effects are
lines appended to a witness file outside Redis (``event invocation pid``), from inside
``ctx.step``: a count per invocation says how often the effect really ran.

Environment: RELIQ_TREES_PARENT / RELIQ_TREES_CHILD (service names), RELIQ_TREES_WITNESS (the
file), RELIQ_TREES_HOLD (seconds a ``child`` holds its worker slot after its step: set for the
worker that is killed mid-child, unset for the one that finishes the work)."""

from __future__ import annotations

import asyncio
import os

from reliq import App, Context, Service

PARENT = os.environ.get("RELIQ_TREES_PARENT", "treep")
CHILD = os.environ.get("RELIQ_TREES_CHILD", "treec")
WITNESS = os.environ.get("RELIQ_TREES_WITNESS", "/dev/null")
HOLD = float(os.environ.get("RELIQ_TREES_HOLD", "0"))

parents, children = Service(PARENT), Service(CHILD)


def witness(event: str, inv: str) -> None:
    with open(WITNESS, "a") as f:
        f.write(f"{event} {inv} {os.getpid()}\n")


@children.handler
async def child(ctx: Context, n: int) -> int:
    await ctx.step("effect", witness, "effect", ctx.id)
    if HOLD:
        await asyncio.sleep(HOLD)  # not durable: the attempt holds its slot (killed here)
    return n * 2


@children.handler(suspend_after=0.0)
async def gated(ctx: Context, n: int) -> int:
    await ctx.step("effect", witness, "effect", ctx.id)
    return n * 2 + int(await ctx.promise("go"))


@parents.handler(suspend_after=0.0)  # suspends at its first remote wait
async def parent(ctx: Context, call: tuple[str, int]) -> int:
    handler, n = call
    await ctx.step("before", witness, "before", ctx.id)
    got = int(await ctx.call(CHILD, handler, n))
    await ctx.step("after", witness, "after", ctx.id)
    return got + 1


app = App([parents, children])
parents_only = App([parents])
