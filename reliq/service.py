"""Services and handlers: what a user declares. A Service is one stream, one consumer group and
one responsibility boundary; its handlers are plain functions taking ``ctx`` and one input."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, Unpack, cast, get_type_hints, overload

import msgspec

from reliq.context import mark_target, target_of
from reliq.store import flow
from reliq.store.cron import CatchUp, Schedule
from reliq.store.intake import check_max_queued
from reliq.store.keys import check_name
from reliq.store.layout import check_partitions
from reliq.store.priority import Priority, check_priority
from reliq.store.registry import HandlerEntry, schema_version

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Per-handler limits. ``timeout`` is per attempt (seconds, None = unlimited)."""

    max_attempts: int = 3
    timeout: float | None = None
    max_deliveries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    suspend_after: float | None = None  # seconds a durable await waits in memory (None: the worker's)
    priority: Priority = "normal"  # when a send gives none (reliq.store.priority)

    def __post_init__(self) -> None:
        for name in ("max_attempts", "max_deliveries"):
            v = getattr(self, name)
            if type(v) is not int or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {v!r}")
        for name in ("timeout", "backoff_base", "backoff_max", "suspend_after"):
            v = getattr(self, name)
            ok = v is None or (type(v) in (int, float) and math.isfinite(v) and v >= 0)
            if not ok or (name == "timeout" and v == 0):
                rule = "> 0 or None" if name == "timeout" else ">= 0"
                raise ValueError(f"{name} must be a finite number of seconds {rule}, not {v!r}")


class FlowOptions(TypedDict, total=False):
    """Per-key concurrency and rate limits, as keywords of ``Service.handler`` (``store/flow.py``).
    ``concurrency_key``: an input field name or a callable on the decoded input; at most
    ``concurrency_limit`` invocations of one key value run at once, started in registration
    order; ``suspended_keeps_permit`` (default True): a suspended invocation keeps its permit.
    ``rate_limit``: ``"N/s"``, ``"N/min"``, ``"N/h"`` starts, per ``rate_key`` value (the same
    field as ``concurrency_key``) or for the whole handler, ``burst`` at once (default 1)."""

    concurrency_key: str | Callable[[Any], Any] | None
    concurrency_limit: int | None
    suspended_keeps_permit: bool
    rate_limit: str | None
    rate_key: str | None
    burst: int | None


class Limits(TypedDict, total=False):
    """``Policy`` fields, as keywords of ``Service.handler``."""

    max_attempts: int
    timeout: float | None
    max_deliveries: int
    backoff_base: float
    backoff_max: float
    suspend_after: float | None
    priority: Priority


class HandlerOptions(Limits, FlowOptions, total=False):
    """Every keyword of ``Service.handler`` besides ``name``."""


@dataclass(frozen=True, kw_only=True)
class Handler:
    """A registered handler: the function, how its input is decoded, and its policy."""

    service: str
    name: str
    fn: Callable[..., Any]
    is_async: bool
    takes_input: bool
    input_type: Any
    policy: Policy
    decoder: msgspec.json.Decoder[Any] = field(repr=False)
    flow: flow.FlowSpec | None = None
    flow_key: Callable[[Any], Any] | None = field(default=None, repr=False)  # a callable key

    def flow_key_of(self, payload: bytes) -> str:
        """The callable key's value for a JSON payload ('' when the key is a field or none)."""
        if self.flow_key is None:
            return ""
        return flow.key_value(self.flow_key(self.decode_input(payload)))

    def decode_input(self, payload: bytes) -> Any:
        """Decode the stored JSON payload into the handler's declared input type."""
        return self.decoder.decode(payload or b"null")

    def schema(self) -> dict[str, Any]:
        """JSON schema of the input (``{}`` when the handler takes no input)."""
        return msgspec.json.schema(self.input_type) if self.takes_input else {}

    def describe(self) -> HandlerEntry:
        """The registry entry workers publish for this handler (``reliq.store.registry``)."""
        schema = self.schema()
        return HandlerEntry(
            service=self.service,
            handler=self.name,
            input_schema=schema,
            schema_version=schema_version(schema),
            sync=not self.is_async,
            takes_input=self.takes_input,
            max_attempts=self.policy.max_attempts,
            timeout=self.policy.timeout,
            max_deliveries=self.policy.max_deliveries,
            flow=msgspec.UNSET if self.flow is None else msgspec.to_builtins(self.flow),
        )


def _build(service: str, name: str, fn: Callable[..., Any], policy: Policy, opts: FlowOptions) -> Handler:
    params = list(inspect.signature(fn).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or len(params) > 2 or any(p.kind not in positional for p in params):
        raise TypeError(f"handler {name!r} must take (ctx) or (ctx, input), both positional")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise TypeError(f"handler {name!r} is a generator: return its result instead")
    takes_input = len(params) == 2
    input_type: Any = Any
    if takes_input:
        hints = get_type_hints(fn)
        input_type = hints.get(params[1].name, Any)
        try:  # what the registry publishes at start: a type without a schema failed only there
            msgspec.json.schema(input_type)
        except (TypeError, ValueError) as e:
            raise TypeError(f"handler {name!r}: its input type cannot be described as JSON ({e})") from None
    spec = flow.build(takes_input=takes_input, input_type=input_type, **opts)
    key = opts.get("concurrency_key")
    return Handler(
        service=service,
        name=name,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        takes_input=takes_input,
        input_type=input_type,
        policy=policy,
        decoder=msgspec.json.Decoder(input_type if takes_input else Any),
        flow=spec,
        flow_key=key if callable(key) else None,
    )


class Service:
    """A named group of handlers sharing one stream and one consumer group.

    >>> orders = Service("orders")
    >>> @orders.handler(max_attempts=5, timeout=30)
    ... async def place(ctx, req: dict) -> dict: ...
    """

    def __init__(self, name: str, *, partitions: int | None = None, max_queued: int | None = None) -> None:
        """``partitions``: spread new invocations over this many partitions (each its own
        stream and Cluster slot); a worker running this service publishes it on start. ``None``
        (the default) follows whatever layout the service already has (1 partition if none).
        ``max_queued``: refuse new invocations (``reliq.Backpressure``, HTTP 429) while this many
        are queued (``reliq.store.intake``); published by its workers on start."""
        self.name = check_name("service", name)
        if max_queued is not None:
            check_max_queued(max_queued)
        self.max_queued = max_queued
        self.partitions = None if partitions is None else check_partitions(partitions)
        self.handlers: dict[str, Handler] = {}
        self.schedules: dict[str, Schedule] = {}  # declared with @svc.cron; workers publish them

    @overload
    def handler(self, fn: F, /) -> F: ...
    @overload
    def handler(self, *, name: str | None = None, **limits: Unpack[HandlerOptions]) -> Callable[[F], F]: ...

    def handler(self, fn: Any = None, /, *, name: str | None = None, **limits: Unpack[HandlerOptions]) -> Any:  # type: ignore[misc]
        """Register a handler; usable bare (``@svc.handler``) or with options: ``name`` (default:
        the function's name), the ``Policy`` fields and the ``FlowOptions`` as keywords. A bad
        flow option raises ``ValueError`` here (at decoration), naming the option."""
        given: dict[str, Any] = dict(limits)
        opts = cast(FlowOptions, {n: given.pop(n) for n in list(given) if n in FlowOptions.__annotations__})
        policy = Policy(**given)
        if policy.max_attempts < 1 or policy.max_deliveries < 1:
            raise ValueError("max_attempts and max_deliveries must be >= 1")
        check_priority(policy.priority)

        def register(f: F) -> F:
            hname = check_name("handler", name or f.__name__)
            if hname in self.handlers:
                raise ValueError(f"handler {self.name}.{hname} registered twice")
            self.handlers[hname] = _build(self.name, hname, f, policy, opts)
            mark_target(f, self.name, hname)
            if callable(opts.get("concurrency_key")):  # Client.send(f, input) computes the key
                with contextlib.suppress(AttributeError, TypeError):
                    f.__reliq_flow_key__ = opts.get("concurrency_key")  # type: ignore[attr-defined]
            return f

        return register(fn) if fn is not None else register

    def cron(
        self,
        expression: str | None = None,
        /,
        *,
        every: timedelta | float | None = None,
        tz: str = "UTC",
        name: str | None = None,
        catch_up: CatchUp = "latest",
        max_catch_up: int = 10,
        payload: Any = None,
    ) -> Callable[[F], F]:
        """Run a handler on a schedule: ``@svc.cron("*/5 * * * *", tz="Europe/Berlin")`` (6
        fields: seconds first) or ``@svc.cron(every=timedelta(minutes=5))``, above
        ``@svc.handler(...)`` or alone (then the function becomes a handler with default options).
        Each tick runs once however many workers run (``ctx.scheduled_for`` is the tick's time);
        ``catch_up`` says what happens to ticks missed while no worker ran (``reliq.store.cron``).
        ``name`` defaults to the handler's name. An invalid expression or zone raises here."""
        secs = every.total_seconds() if isinstance(every, timedelta) else every

        def register(f: F) -> F:
            target = getattr(f, "__reliq_target__", None)
            if target is None or target[0] != self.name:
                f = self.handler(f)
            hname = target_of(f)[1]
            spec = Schedule(
                name=name or hname,
                handler=hname,
                cron=expression,
                every=secs,
                tz=tz,
                catch_up=catch_up,
                max_catch_up=max_catch_up,
                payload=payload,
                origin="code",
            ).checked()
            if spec.name in self.schedules:
                raise ValueError(f"schedule {self.name}.{spec.name} declared twice")
            self.schedules[spec.name] = spec
            return f

        Schedule(
            name=name or "check",
            handler="check",
            cron=expression,
            every=secs,
            tz=tz,
            catch_up=catch_up,
            max_catch_up=max_catch_up,
        ).checked()  # fail at decoration
        return register

    def __repr__(self) -> str:
        return f"Service({self.name!r}, handlers={sorted(self.handlers)})"


class App:
    """The services one worker process runs: ``App([orders, shipping])``."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {}
        for s in services:
            if not isinstance(s, Service):
                raise TypeError(f"App takes Service objects, not {type(s).__name__} {s!r}")
            if s.name in self.services:
                raise ValueError(f"service {s.name!r} listed twice")
            self.services[s.name] = s

    @classmethod
    def of(cls, obj: App | Service) -> App:
        """Accept an App or a single Service."""
        return obj if isinstance(obj, App) else cls([obj])

    def handler(self, service: str, name: str) -> Handler | None:
        s = self.services.get(service)
        return s.handlers.get(name) if s else None
