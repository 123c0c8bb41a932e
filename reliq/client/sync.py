"""``SyncClient``: the ``Client`` for code without an event loop (Django, Flask, scripts, threads).

One SyncClient owns one background thread running one event loop, and on it one ``Client`` with
its own connection pool. Each method submits the Client's coroutine to that loop and blocks the
calling thread until it is done, so any number of threads can share one SyncClient; the loop is
never visible to the caller.

The Client's public coroutine methods are forwarded generically: the common ones below are typed
(``blocking`` keeps their signatures for mypy), and any other (including methods added to
``Client`` later) is forwarded by ``__getattr__``.

>>> with SyncClient("redis://127.0.0.1:6379") as client:
...     accepted = client.send("orders", "place", {"order_id": "o1", "amount_cents": 500}, key="o1")
...     client.result(accepted.id, timeout=10)
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, TypeVar

from reliq.client import Client

P = ParamSpec("P")
R = TypeVar("R")


def blocking(
    method: Callable[Concatenate[Client, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncClient, P], R]:
    """The blocking twin of a ``Client`` coroutine method, with the same parameters."""

    def run(self: SyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self._client, *args, **kwargs))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run


class SyncClient:
    """A thread-safe, blocking ``Client``: same methods, same arguments, results returned.

    ``SyncClient(url)`` takes what ``Client`` takes; close it (or use ``with``) to stop its thread
    and its connections."""

    def __init__(self, redis_url: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reliq-sync-client", daemon=True)
        self._thread.start()
        self._closed = False

        async def make() -> Client:  # the Client's connections belong to the loop they are made on
            return Client(redis_url, **options)

        self._client = self._run(make())

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncClient is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("SyncClient called from its own loop: use the async Client there")
        future: Future[R] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def __getattr__(self, name: str) -> Any:
        """Any other Client method, forwarded (a coroutine method runs on the loop)."""
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def forward(*args: Any, **kwargs: Any) -> Any:
            return self._run(attr(*args, **kwargs))

        forward.__name__ = name
        forward.__doc__ = attr.__doc__
        return forward

    send = blocking(Client.send)
    send_json = blocking(Client.send_json)
    send_many = blocking(Client.send_many)
    call = blocking(Client.call)
    result = blocking(Client.result)
    get = blocking(Client.get)
    state = blocking(Client.state)
    outcome = blocking(Client.outcome)
    wait = blocking(Client.wait)
    cancel = blocking(Client.cancel)
    redrive = blocking(Client.redrive)
    resolve = blocking(Client.resolve)
    reject = blocking(Client.reject)
    parked = blocking(Client.parked)
    services = blocking(Client.services)
    handlers = blocking(Client.handlers)
    heartbeats = blocking(Client.heartbeats)
    backlog = blocking(Client.backlog)
    counts = blocking(Client.counts)
    durability = blocking(Client.durability)
    set_partitions = blocking(Client.set_partitions)

    def close(self) -> None:
        """Close the Client's connections and stop the loop thread (idempotent)."""
        if self._closed:
            return
        try:
            self._run(self._client.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
