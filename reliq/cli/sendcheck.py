"""The checks ``reliq send`` makes before it writes anything, the same the gateway makes without
the workers' code (``gateway.catalog`` / ``gateway.validation``): the service and the handler are
in the registry workers publish, and the payload is valid under the input JSON schema of a
version live workers run (``Client.handler_schemas``; during a rolling deploy, any of them).

Each refusal is a ``NotSendable`` (a ``ValueError``: the CLI prints it in one line and exits 2).
The schemas are checked with jsonschema-rs, which comes with the ``gateway`` extra; without it,
only the names are checked. ``reliq send --no-check`` skips all of this (to send before any
worker of the service has started).

>>> await check_send(client, "orders", "place", {"order_id": 1})
NotSendable: payload does not match orders/place's input schema: 1 is not of type "string" - at `$.order_id`
"""

from __future__ import annotations

from typing import Any

from reliq.client import Client
from reliq.client.schemas import HandlerSchemas
from reliq.schemacheck import compile_schema, first_error

NO_CHECK = "--no-check sends anyway"


class NotSendable(ValueError):
    """The service or handler is not registered, or the payload fails its input schema."""


def schema_error(found: HandlerSchemas, payload: Any) -> str | None:
    """Why ``payload`` is valid under none of the handler's schemas (the current one's first
    error), or None when it is valid under one of them (or cannot be checked here)."""
    if not found.takes_input:
        return None
    validators = [compile_schema(v.input_schema) for v in found.versions]
    return first_error([v for v in validators if v is not None], payload)


async def check_send(client: Client, service: str, handler: str, payload: Any) -> None:
    """Raise ``NotSendable`` unless ``service``/``handler`` is registered and ``payload`` fits."""
    handlers = await client.handler_schemas(service)
    if not handlers:
        raise NotSendable(f"no service {service!r} is registered (no worker of it has started; {NO_CHECK})")
    found = handlers.get(handler)
    if found is None:
        known = ", ".join(sorted(handlers))
        raise NotSendable(f"no handler {service}/{handler} is registered (it has {known}; {NO_CHECK})")
    why = schema_error(found, payload)
    if why is not None:
        raise NotSendable(f"payload does not match {service}/{handler}'s input schema: {why}")
