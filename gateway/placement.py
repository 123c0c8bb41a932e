"""Place a trigger durably: run the registration script and, on the same connection, confirm
the configured durability before the gateway answers 2xx.

- ``fsync``: the server runs ``appendfsync always``, so the script's reply already means the
  write is on disk (checked at start and on every readiness probe, never assumed).
- ``replicas:N``: ``WAIT N timeout`` in the same pipeline as the script (same connection), and
  fewer than N acknowledgements is a 503 "not confirmed" (the write may exist; the retry with
  the same Idempotency-Key converges on it).
- ``none``: development only; reported as such in every answer.
"""

from __future__ import annotations

from datetime import datetime

from reliq import Client
from reliq.codec import fingerprint
from reliq.keys import keyed_id, new_id
from reliq.record import Accepted

from . import failpoints
from .problems import Problem, unavailable


async def place(
    client: Client,
    durability: str,
    replicas: int,
    wait_ms: int,
    service: str,
    handler: str,
    body: bytes,
    *,
    key: str | None,
    delay_ms: int | None,
    at: datetime | None,
    trace: str = "",
) -> Accepted:
    inv = keyed_id(service, key) if key is not None else new_id(service)
    due_ms = None if at is None else int(at.timestamp() * 1000)
    k = client.keys(service)
    if replicas == 0:
        status, state = await client.scripts.register(
            k, inv, fingerprint(handler, body), handler, body, "", key or "", delay_ms, due_ms, trace
        )
    else:
        async with client.redis.pipeline(transaction=False) as pipe:
            await client.scripts.register_in(
                pipe,
                k,
                inv,
                fingerprint(handler, body),
                handler,
                body,
                "",
                key or "",
                delay_ms,
                due_ms,
                trace,
            )
            pipe.execute_command("WAIT", replicas, wait_ms)
            reply, acked = await pipe.execute()
        status, state = (x.decode() if isinstance(x, bytes) else str(x) for x in reply)
        if int(acked) < replicas:
            raise unavailable(
                f"only {int(acked)} of {replicas} replicas confirmed the write; retry with the "
                "same Idempotency-Key"
            )
    failpoints.hit("after_register")  # crash tests: the trigger is placed, the caller never hears
    if status == "conflict":
        raise Problem(
            422,
            "Unprocessable Content",
            "this Idempotency-Key was already used with a different request",
            invocation_id=inv,
        )
    return Accepted(id=inv, status=status, state=state)  # type: ignore[arg-type]
