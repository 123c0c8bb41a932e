"""Whether a run is traced is decided once per claimed batch, not per run: a tracer provider set
while the worker runs traces the runs of the next batch; without one no span is made."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reliq import Context, Service, tracing

from ..conftest import Names, client, running, wait_until


async def test_a_provider_set_while_the_worker_runs_traces_the_next_batch(url: str, names: Names) -> None:
    svc = Service(names())
    seen: list[str | None] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        seen.append(ctx.traceparent)

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with running(svc, url) as w, client(url) as c:
        assert w.executor.call == w.executor._call  # no provider: no tracing wrapper at all
        await c.call(svc.name, "job", timeout=10)
        assert seen == [None] and spans.get_finished_spans() == ()
        tracing.provider = provider
        try:
            await c.call(svc.name, "job", timeout=10)
            await wait_until(lambda: len(spans.get_finished_spans()) == 1, what="the run's span")
        finally:
            tracing.provider = None
            provider.shutdown()
        [span] = spans.get_finished_spans()
        assert span.name == f"reliq.run {svc.name}.job"
        assert seen[1] is not None and format(span.context.span_id, "016x") in seen[1]
