"""The producer side: register invocations, look them up, wait for results, cancel, redrive.

``Client`` is the only path to Redis for the gateway and for ``ctx.send``/``ctx.call``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import codec
from .durability import Durability, inspect_server
from .errors import IdempotencyConflict, InvocationFailed, UnknownInvocation
from .keys import ServiceKeys, check_name, keyed_id, new_id, service_of
from .record import TERMINAL, Accepted, Invocation, parse
from .scripts import Scripts

DAY_MS = 24 * 3600 * 1000


def connect(url: str, max_connections: int = 64) -> Redis:
    """A redis-py asyncio client for reliq: bytes replies; callers wait for a free connection
    instead of failing; commands are re-sent after connection errors and timeouts (3 times), which
    is safe because reliq's writes are scripts that detect their own re-send (register by id and
    fingerprint, claim by token, settle scripts by epoch and state)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=20,
        health_check_interval=30,
        socket_timeout=10,
        socket_connect_timeout=5,
        retry=RedisRetry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)  # the client owns (and closes) its pool


def _seconds(delay: float | timedelta | None) -> float | None:
    if delay is None:
        return None
    s = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if s < 0 or s != s:
        raise ValueError("delay must be a non-negative number of seconds")
    return s


class Client:
    """Talk to reliq through Redis.

    >>> client = Client("redis://127.0.0.1:6379")
    >>> accepted = await client.send("orders", "place", {"order_id": "o1", "amount_cents": 100}, key="o1")
    >>> await client.result(accepted.id, timeout=10)
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis: Redis | None = None,
        retention: timedelta | float = timedelta(hours=24),
    ) -> None:
        if redis is None:
            redis = connect(redis_url or "redis://127.0.0.1:6379/0")
            self._owns = True
        else:
            self._owns = False
        # typed Any on purpose: redis-py types replies as bytes | str unions; reliq always
        # reads bytes (decode_responses=False) and decodes at the edge
        self.redis: Any = redis
        self.scripts = Scripts(redis)
        self.retention_ms = int(
            (retention.total_seconds() if isinstance(retention, timedelta) else retention) * 1000
        )
        self._keys: dict[str, ServiceKeys] = {}

    def keys(self, service: str) -> ServiceKeys:
        k = self._keys.get(service)
        if k is None:
            k = self._keys[service] = ServiceKeys(service)
        return k

    async def close(self) -> None:
        if self._owns:
            await self.redis.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- registration -------------------------------------------------------------------------
    async def send(
        self,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> Accepted:
        """Register an invocation durably; returns its id. Same ``key`` + same payload -> same id
        (``previously_accepted``); same key + different payload raises ``IdempotencyConflict``."""
        return await self.send_json(service, handler, codec.encode(payload), key=key, delay=delay, at=at)

    async def send_json(
        self,
        service: str,
        handler: str,
        body: bytes,
        *,
        key: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        invocation_id: str | None = None,
        parent: str | None = None,
        trace: str | None = None,
    ) -> Accepted:
        """Like ``send`` for an already-encoded JSON payload (the gateway's path)."""
        check_name("service", service)
        check_name("handler", handler)
        if key is not None:
            codec.check_key(key)
        if invocation_id is None:
            invocation_id = keyed_id(service, key) if key is not None else new_id(service)
        d = _seconds(delay)
        delay_ms = None if d is None else int(d * 1000)
        due_ms = None if at is None else int(at.timestamp() * 1000)
        status, state = await self.scripts.register(
            self.keys(service),
            invocation_id,
            codec.fingerprint(handler, body),
            handler,
            body,
            parent or "",
            key or "",
            delay_ms,
            due_ms,
            trace or "",
        )
        if status == "conflict":
            raise IdempotencyConflict(invocation_id)
        return Accepted(id=invocation_id, status=status, state=state)  # type: ignore[arg-type]

    async def call(
        self,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """Send, then wait up to ``timeout`` seconds for the result."""
        accepted = await self.send(service, handler, payload, key=key)
        return await self.result(accepted.id, timeout=timeout)

    # -- lookups ------------------------------------------------------------------------------
    async def get(self, invocation_id: str) -> Invocation | None:
        """The status document of an invocation, or None if unknown/expired."""
        k = self.keys(service_of(invocation_id))
        async with self.redis.pipeline(transaction=False) as p:
            p.hgetall(k.inv(invocation_id))
            p.hgetall(k.steps(invocation_id))
            p.zrange(k.children(invocation_id), 0, -1)
            rec, steps, children = await p.execute()
        if not rec or b"state" not in rec:
            return None
        return parse(invocation_id, rec, steps, children)

    async def state(self, invocation_id: str) -> str | None:
        raw = await self.redis.hget(self.keys(service_of(invocation_id)).inv(invocation_id), "state")
        return raw.decode() if raw else None

    async def result(self, invocation_id: str, timeout: float = 30.0) -> Any:
        """Wait until the invocation is finished and return its result.

        Raises ``InvocationFailed`` (failed/cancelled), ``UnknownInvocation``, or ``TimeoutError``.
        """
        k = self.keys(service_of(invocation_id))
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            state, result, error = await self.redis.hmget(k.inv(invocation_id), "state", "result", "error")
            if state is None:
                raise UnknownInvocation(invocation_id)
            st = state.decode()
            if st == "succeeded":
                return codec.decode(result)
            if st in TERMINAL:
                raise InvocationFailed(invocation_id, st, codec.decode(error))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"invocation {invocation_id} not finished after {timeout} s")
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 1.5, 0.1)

    # -- actions ------------------------------------------------------------------------------
    async def cancel(self, invocation_id: str) -> str:
        """Cancel: 'cancelled' (was queued/delayed; it never runs), 'cancelling' (running; its
        worker cancels the handler), 'terminal' (already finished). Unknown ids raise."""
        k = self.keys(service_of(invocation_id))
        outcome = await self.scripts.cancel(k, invocation_id, self.retention_ms)
        if outcome == "unknown":
            raise UnknownInvocation(invocation_id)
        if outcome == "cancelling":
            await self.redis.publish(k.prefix + "cancel", invocation_id)
        return outcome

    async def redrive(self, invocation_id: str) -> str:
        """Put a parked (failed) invocation back as a new attempt series: 'redriven' | 'not_failed'."""
        outcome = await self.scripts.redrive(self.keys(service_of(invocation_id)), invocation_id)
        if outcome == "unknown":
            raise UnknownInvocation(invocation_id)
        return outcome

    async def parked(self, service: str, limit: int = 100) -> list[str]:
        """Ids in the service's parked set, newest first."""
        ids = await self.redis.zrevrange(self.keys(service).parked, 0, max(0, min(limit, 1000)) - 1)
        return [i.decode() for i in ids]

    async def durability(self) -> Durability:
        """The durability level this server can honestly give (see ``reliq.durability``)."""
        return await inspect_server(self.redis)

    async def server_time_ms(self) -> int:
        sec, usec = await self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000
