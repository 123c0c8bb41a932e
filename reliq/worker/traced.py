"""Tracing as a wrapper around the worker's handler call (``reliq.tracing`` has the span
helpers): chosen once when the executor is built, so the hot path pays nothing without
OpenTelemetry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reliq.service import Handler
from reliq.tracing import active, enabled, span
from reliq.worker.decide import Claimed

HandlerCall = Callable[[Handler, Claimed, tuple[Any, ...], str | None], Awaitable[Any]]


def traced(call: HandlerCall) -> HandlerCall:
    """Wrap the worker's handler call so that each run is a ``reliq.run S.H`` span whose context
    the handler (``ctx.traceparent``) and its children inherit. Chosen once, when the worker is
    built: without the OpenTelemetry API ``call`` is returned as it is; with it, whether a span
    is recorded is still checked per run (a provider may be configured later)."""
    if not enabled:
        return call

    async def run(h: Handler, c: Claimed, args: tuple[Any, ...], trace: str | None) -> Any:
        if not active():
            return await call(h, c, args, trace)
        attributes = {"reliq.invocation_id": c.id, "reliq.attempt": c.attempt, "reliq.epoch": c.epoch}
        with span(f"reliq.run {h.service}.{h.name}", trace or "", "consumer", attributes) as tp:
            return await call(h, c, args, tp or None)

    return run
