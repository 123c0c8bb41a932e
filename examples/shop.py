"""Example services for ``make dev``: an order flow with a memoized charge step and a child call."""

from __future__ import annotations

import msgspec

from reliq import App, Context, Service, Terminal

orders = Service("orders")
shipping = Service("shipping")


class PlaceOrder(msgspec.Struct):
    order_id: str
    amount_cents: int


def charge_card(order_id: str, amount_cents: int) -> str:
    # a real integration would pass an idempotency key to the payment provider
    return f"rcpt-{order_id}-{amount_cents}"


@orders.handler(max_attempts=5, timeout=30)
async def place(ctx: Context, req: PlaceOrder) -> dict[str, str]:
    if req.amount_cents <= 0:
        raise Terminal("amount must be positive", status=422)
    receipt = await ctx.step("charge", charge_card, req.order_id, req.amount_cents)
    label = await ctx.call("shipping", "prepare", {"order_id": req.order_id})
    return {"receipt": receipt, "label": label}


@shipping.handler
async def prepare(ctx: Context, req: dict[str, str]) -> str:
    return f"label-{req['order_id']}"


@orders.handler
def refund(ctx: Context, order_id: str) -> None:
    """A sync handler: runs in the worker's thread pool."""


app = App([orders, shipping])
