"""``WorkerConfig`` refuses what cannot work (QA, session 15): a retention of 0 or less deleted
every record as it finished (idempotency gone), a zero or NaN visibility timeout lost every lease,
and an empty partition set consumed everything in a supervised child; ``--partitions`` naming no
partition there is runs (a partition may be added) and stops cleanly."""

from __future__ import annotations

import math

import pytest

from reliq import App, Context, Service
from reliq.worker.config import WorkerConfig

from ..conftest import Names, running


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retention", -1.0),
        ("retention", 0.0),
        ("retention", math.nan),
        ("visibility_timeout", 0.0),
        ("visibility_timeout", math.inf),
        ("heartbeat_interval", 0.0),
        ("shutdown_grace", -1.0),
        ("suspend_after", -1.0),
        ("block", math.nan),
        ("reclaim_interval", 0.0),
        ("partitions", frozenset()),
    ],
)
def test_values_that_cannot_work_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        WorkerConfig(**{field: value})  # type: ignore[arg-type]


def test_the_defaults_and_zero_graces_are_fine() -> None:
    WorkerConfig()
    WorkerConfig(shutdown_grace=0, suspend_after=0, cancel_grace=0, cron_grace=0, reclaim_interval=None)


async def test_partitions_that_name_none_there_is_consume_nothing_and_stop_cleanly(
    url: str, names: Names
) -> None:
    svc = Service(names())

    @svc.handler
    async def noop(ctx: Context) -> None: ...

    async with running(svc, url, partitions=frozenset({7})) as w:
        assert w.rt.config.partitions == frozenset({7})
    # leaving the block stopped it: before, the shutdown raised "Set of Tasks/Futures is empty"


class Opaque:  # no JSON schema: msgspec cannot describe it
    pass


async def kw(ctx: Context, *, req: int) -> None: ...


async def gen(ctx: Context) -> object:
    yield 1


async def opaque(ctx: Context, req: Opaque) -> None: ...


@pytest.mark.parametrize(("fn", "says"), [(kw, "positional"), (gen, "generator"), (opaque, "JSON")])
def test_a_handler_that_could_never_run_is_refused_at_decoration(fn: object, says: str) -> None:
    """Each was accepted and failed later: every attempt (keyword-only input, generators) or the
    worker's start (a type without a schema, when the registry was published)."""
    svc = Service("cfg")
    with pytest.raises(TypeError, match=says):
        svc.handler(fn)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "opts",
    [
        {"max_attempts": 2.5},
        {"max_attempts": "3"},
        {"max_deliveries": 0},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": math.nan},
        {"backoff_base": -1},
        {"backoff_max": math.inf},
        {"suspend_after": -1},
    ],
)
def test_handler_limits_that_cannot_work_are_refused_at_decoration(opts: dict[str, object]) -> None:
    svc = Service("cfg")
    with pytest.raises(ValueError, match=next(iter(opts))):

        @svc.handler(**opts)  # type: ignore[call-overload]
        async def job(ctx: Context) -> None: ...


def test_an_app_of_names_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="Service objects"):
        App(["orders"])  # type: ignore[list-item]
