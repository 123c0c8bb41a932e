"""W3C trace context through reliq.

Always: the caller's ``traceparent`` is stored with the invocation, handed to the handler as
``ctx.traceparent`` and inherited by the children it sends.

With OpenTelemetry (``pip install reliq[otel]``, and a tracer provider configured by the
application as usual): the gateway opens a ``reliq.place S.H`` span (kind SERVER) around each
registration and stores *its* context, and each run of a handler is a ``reliq.run S.H`` span
(kind CONSUMER) under it; children sent from the handler carry the run span's context. One trace
then spans caller → gateway → handler → children, across processes and retries (every attempt is
its own span in the same trace). Without a configured provider no span is made and the ids are
carried unchanged."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import trace as otel
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is optional
    otel = None  # type: ignore[assignment]
    enabled = False
else:
    enabled = True
    _propagator = TraceContextTextMapPropagator()
# OpenTelemetry loads a provider named by this variable on first use; read once here, because
# ``get_tracer_provider`` reads the environment on every call until a provider is set
_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?\Z")
_ZERO_TRACE, _ZERO_PARENT = "0" * 32, "0" * 16


def valid_traceparent(header: str) -> str:
    """``header`` as a W3C ``traceparent`` (version-trace_id-parent_id-flags), or "" when the
    spec says to ignore it: malformed, version ``ff``, an all-zero trace id or parent id, or
    version 00 with anything after the flags. A later version's extra fields are dropped."""
    if not header:
        return ""
    h = header.strip()
    if _TRACEPARENT.match(h) is None or h[:2] == "ff" or h[3:35] == _ZERO_TRACE or h[36:52] == _ZERO_PARENT:
        return ""
    if len(h) > 55:
        return "" if h[:2] == "00" else h[:55]
    return h


provider: Any = None  # a TracerProvider to use instead of the global one (tests, embedding)
_cached: tuple[Any, Any] = (object(), None)  # (provider, its tracer)


def _tracer() -> Any:
    """The reliq tracer of ``provider`` (a proxy to the global provider when it is None)."""
    global _cached
    if _cached[0] is not provider:
        _cached = (provider, otel.get_tracer("reliq", tracer_provider=provider))
    return _cached[1]


def active() -> bool:
    """True when spans would be recorded: the API is installed and a real provider is set (checked
    per call, so an application may configure OpenTelemetry after importing reliq; only
    ``OTEL_PYTHON_TRACER_PROVIDER`` is read once, at import). The no-op case costs nothing on the
    hot paths."""
    if not enabled:
        return False
    if provider is not None:
        return True
    if getattr(otel, "_TRACER_PROVIDER", True) is None and not _ENV_PROVIDER:
        return False  # nothing set yet: the proxy provider, without asking the environment
    return not isinstance(otel.get_tracer_provider(), otel.ProxyTracerProvider | otel.NoOpTracerProvider)


@contextmanager
def span(name: str, traceparent: str, kind: str, attributes: Mapping[str, Any]) -> Iterator[str]:
    """Run the block in a span whose parent is ``traceparent``; yields the traceparent to pass on
    (the span's own when OpenTelemetry records it, otherwise ``traceparent`` unchanged)."""
    if not enabled:
        yield traceparent
        return
    parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
    tracer = _tracer()
    span_kind = otel.SpanKind.SERVER if kind == "server" else otel.SpanKind.CONSUMER
    with tracer.start_as_current_span(name, context=parent, kind=span_kind, attributes=dict(attributes)):
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        yield carrier.get("traceparent", traceparent)


# how the worker calls a handler: (handler, claimed attempt, decoded input args, traceparent)
