"""OpenTelemetry: one trace spans caller -> gateway (reliq.place) -> handler (reliq.run) -> child."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reliq import Context, Service, tracing

from ..conftest import Names, running, wait_until
from .conftest import gateway

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.provider = provider
    try:
        yield spans
    finally:
        tracing.provider = None
        provider.shutdown()


async def test_one_trace_spans_caller_gateway_handler_and_child(
    url: str, names: Names, exporter: InMemorySpanExporter
) -> None:
    parent, child = Service(names("p")), Service(names("c"))
    seen: dict[str, str | None] = {}

    @child.handler
    async def leaf(ctx: Context) -> None:
        seen["leaf"] = ctx.traceparent

    @parent.handler
    async def root(ctx: Context) -> None:
        seen["root"] = ctx.traceparent
        await ctx.call(child.name, "leaf")

    tp = f"00-{TRACE}-{CALLER_SPAN}-01"
    async with gateway(url, parent) as http, running(parent, url), running(child, url):
        r = await http.post(f"/call/{parent.name}/root", json=None, headers={"traceparent": tp})
        assert r.status_code == 200

        def spans() -> dict[str, Any]:
            return {s.name: s for s in exporter.get_finished_spans()}

        await wait_until(lambda: f"reliq.run {child.name}.leaf" in spans(), what="child span")
    got = spans()
    place = got[f"reliq.place {parent.name}.root"]
    run = got[f"reliq.run {parent.name}.root"]
    leaf_run = got[f"reliq.run {child.name}.leaf"]
    for s in (place, run, leaf_run):
        assert format(s.context.trace_id, "032x") == TRACE
    assert format(place.parent.span_id, "016x") == CALLER_SPAN
    assert run.parent.span_id == place.context.span_id
    assert leaf_run.parent.span_id == run.context.span_id
    assert seen["root"] == f"00-{TRACE}-{format(run.context.span_id, '016x')}-01"
    assert run.attributes["reliq.attempt"] == 1
