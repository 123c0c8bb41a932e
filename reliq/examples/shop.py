"""Example services for ``make dev`` and ``reliq dev`` (no argument): one readable order flow that
shows each idea of reliq.

- ``orders.place``: the gateway places the trigger (callee placement); the handler memoizes the
  charge with ``ctx.step``, then places child triggers itself (caller placement): it waits for
  ``shipping.prepare`` (``ctx.call``) and fires ``notifications.email`` (``ctx.send``).
- ``orders.flaky``: fails its first 2 attempts, succeeds on the 3rd (retries with backoff).
- ``orders.always_fails``: raises every time; after 2 attempts it is parked
  (state ``failed``, reason ``attempts-exhausted``).
- ``orders.slow``: runs 40 s, longer than the 30 s visibility timeout; the worker renews its lease
  every 10 s, so it runs exactly once (watch ``owner`` and ``lease_until`` move).
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from reliq import App, Context, Service, SyncContext, Terminal

log = logging.getLogger("shop")

orders = Service("orders")
shipping = Service("shipping")
notifications = Service("notifications")


class PlaceOrder(msgspec.Struct):
    order_id: str
    amount_cents: int


class Email(msgspec.Struct):
    to: str
    subject: str


def charge_card(order_id: str, amount_cents: int) -> str:
    # a real integration would pass an idempotency key to the payment provider
    return f"rcpt-{order_id}-{amount_cents}"


@orders.handler(max_attempts=5, timeout=30)
async def place(ctx: Context, req: PlaceOrder) -> dict[str, str]:
    if req.amount_cents <= 0:
        raise Terminal("amount must be positive", status=422)
    # journaled once per invocation: a retried attempt gets the stored receipt back
    receipt = await ctx.step("charge", charge_card, req.order_id, req.amount_cents)
    # children get ids derived from this invocation: a retry never places them twice
    label = await ctx.call("shipping", "prepare", {"order_id": req.order_id})
    note = {"to": f"{req.order_id}@example.com", "subject": f"order shipped: {label}"}
    await ctx.send("notifications", "email", note)
    return {"receipt": receipt, "label": label}


@shipping.handler
async def prepare(ctx: Context, req: dict[str, str]) -> str:
    return f"label-{req['order_id']}"


@notifications.handler
async def email(ctx: Context, req: Email) -> None:
    """Fire-and-forget child of ``orders.place``: nobody waits for it."""
    log.info("email to %s: %s (parent %s)", req.to, req.subject, ctx.parent_id)


@orders.handler(max_attempts=5, backoff_base=0.2)
async def flaky(ctx: Context) -> dict[str, int]:
    """Raises on attempts 1 and 2; reliq retries it after a short backoff."""
    if ctx.attempt < 3:
        raise ConnectionError(f"upstream unavailable (attempt {ctx.attempt})")
    return {"attempts": ctx.attempt}


@orders.handler(max_attempts=2, backoff_base=0.2)
async def always_fails(ctx: Context) -> None:
    """A plain exception every time: retried once, then parked (see ``redrive``)."""
    raise RuntimeError(f"payment provider down (attempt {ctx.attempt})")


@orders.handler
async def slow(ctx: Context) -> str:
    """Longer than the visibility timeout: lease renewal keeps it from being reclaimed."""
    await asyncio.sleep(40)
    return "done after 40 s"


@orders.handler
def refund(ctx: SyncContext, order_id: str) -> None:
    """A sync handler: runs in the worker's thread pool."""


app = App([orders, shipping, notifications])
