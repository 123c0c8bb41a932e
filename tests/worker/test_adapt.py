"""The adaptive concurrency limit (``reliq.worker.adapt``): the rule on its own, then real workers
against the embedded Valkey: a backlog of no-op invocations grows the limit past where it starts
(seen in the heartbeat), a handler queueing on a narrow shared downstream keeps it well below,
and an explicit concurrency is a hard cap that never adapts."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import pytest

from reliq import Context, Service, WorkerConfig
from reliq.cli.main import _worker_config
from reliq.cli.parser import build_parser
from reliq.store.registry import decode_heartbeat
from reliq.worker.adapt import (
    ALLOWANCE,
    CEILING,
    FLOOR,
    INITIAL,
    MAX_BATCH,
    MEMORY,
    WINDOW_MIN,
    Adaptive,
    Window,
    batch_for,
    next_limit,
)
from reliq.worker.supervise import child_command

from ..conftest import Names, client, running, wait_until

LEASE = 30.0


def window(mean: float, least: float | None = None, *, full: int = 1, wait: float = 0.0) -> Window:
    return Window(
        count=50, total=50 * mean, least=mean if least is None else least, wait=wait, full_reads=full
    )


def step(
    limit: int, baseline: float, w: Window, floor: int = FLOOR, ceiling: int = CEILING, span: float = 0.1
) -> tuple[int, float]:
    return next_limit(limit, baseline, w, floor=floor, ceiling=ceiling, lease=LEASE, span=span)


def test_a_backlog_with_a_flat_sojourn_grows_the_limit_to_the_ceiling() -> None:
    limit, base = INITIAL, 0.0
    seen = [limit]
    for _ in range(30):
        limit, base = step(limit, base, window(0.004, 0.002))
        seen.append(limit)
    assert seen == sorted(seen) and seen[1] > INITIAL and limit == CEILING
    assert base == pytest.approx(0.002)


def test_no_backlog_holds_the_limit() -> None:
    # every read came back short: the limit is not what holds the work back
    assert step(200, 0.002, window(0.004, 0.002, full=0))[0] == 200


def test_a_sojourn_that_rises_past_the_tolerance_shrinks_the_limit() -> None:
    base = 0.010
    target = 2 * base + ALLOWANCE
    assert step(100, base, window(target * 0.4, base))[0] == 150  # well within: x1.5
    assert step(100, base, window(target * 0.9, base))[0] == 110  # within: + sqrt(limit)
    limit, _ = step(100, base, window(target * 1.25, base))
    assert limit == int(100 * 0.8)  # as Gradient2: by target / mean
    assert step(100, base, window(target * 10, base))[0] == 50  # at most halving per window


def test_a_downstream_whose_latency_grows_with_load_settles_well_below_the_start() -> None:
    """A model of 5 permits of 10 ms each: the mean sojourn is about limit / 5 x 10 ms."""
    limit, base = INITIAL, 0.0
    for _ in range(40):
        mean = max(0.010, limit / 500)  # Little: limit in flight at 500 per second
        limit, base = step(limit, base, window(mean, 0.010))
    assert FLOOR <= limit <= 40


def test_the_limit_stays_within_floor_and_ceiling() -> None:
    assert step(12, 0.001, window(10.0, 0.001), floor=10)[0] == 10
    assert step(900, 0.001, window(0.001), ceiling=950)[0] == 950
    assert step(3, 0.001, window(0.001), floor=1, ceiling=3)[0] == 3


def test_a_long_wait_for_the_loop_halves_the_limit_whatever_the_sojourn_says() -> None:
    # flat sojourn and a backlog (it would grow), but entries waited lease / 10 to start
    assert step(400, 5.0, window(5.0, 5.0, wait=LEASE / 10 + 0.1))[0] == 200
    assert step(400, 5.0, window(5.0, 5.0, wait=LEASE / 10 - 0.1))[0] > 400
    # a long handler (its own run is renewed) is not a reason to shrink
    assert step(400, 20.0, window(20.0, 20.0, wait=0.001))[0] > 400


def test_the_baseline_is_the_decayed_minimum() -> None:
    _, base = step(100, 0.010, window(0.050, 0.005))
    assert base == 0.005  # a smaller one replaces it at once
    _, base = step(100, 0.010, window(0.100, 0.100, full=0), span=3.0)
    assert base == pytest.approx(0.010 + 0.090 * 3.0 / MEMORY)  # a larger one pulls it up slowly
    _, base = step(100, 0.010, window(0.100, 0.100, full=0), span=10 * MEMORY)
    assert base == pytest.approx(0.100)  # ... and replaces it after MEMORY seconds
    # under a backlog every sojourn includes queueing: it rises only at the floor
    assert step(100, 0.010, window(0.100, 0.100), span=10 * MEMORY)[1] == 0.010
    assert step(FLOOR, 0.010, window(0.100, 0.100), span=10 * MEMORY)[1] == pytest.approx(0.100)


def test_the_state_closes_a_window_per_half_limit_and_sizes_the_batch() -> None:
    a = Adaptive(lease=LEASE)
    assert a.limit == INITIAL and a.batch == INITIAL // 2
    a.read(held=50, got=50)
    changes = [a.done(10.002, 10.0, 10.001) for _ in range(max(WINDOW_MIN, INITIAL // 2))]
    assert changes[:-1] == [None] * (len(changes) - 1) and changes[-1] == a.limit > INITIAL
    assert a.window.count == 0 and a.batch == a.limit // 2
    # a run claimed before the limit changed measured the old limit: left out
    assert a.done(10.5, 9.0, 9.1) is None and a.window.count == 0
    a.done(10.5, 10.4, 10.41)
    assert (
        a.window.count == 1 and a.window.total == pytest.approx(0.1) and a.window.wait == pytest.approx(0.01)
    )
    assert batch_for(1) == 1 and batch_for(CEILING) == MAX_BATCH
    with pytest.raises(ValueError, match="floor <= ceiling"):
        Adaptive(floor=20, ceiling=10)


def test_an_explicit_concurrency_has_no_adaptive_state() -> None:
    assert Adaptive.of(WorkerConfig(concurrency=7)) is None
    a = Adaptive.of(WorkerConfig(min_concurrency=5, max_concurrency=50, visibility_timeout=4.0))
    assert a is not None and (a.floor, a.ceiling, a.lease, a.limit) == (5, 50, 4.0, 50)


def _parse(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["worker", "m:app", *flags])


def test_the_cli_defaults_to_adaptive_and_refuses_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _worker_config(_parse())
    assert cfg.concurrency is None and cfg.batch is None and cfg.adaptive
    assert (cfg.min_concurrency, cfg.max_concurrency) == (FLOOR, CEILING)
    cfg = _worker_config(_parse("--concurrency", "7", "--max-concurrency", "300"))
    assert cfg.concurrency == 7 and not cfg.adaptive and cfg.max_concurrency == 300
    with pytest.raises(SystemExit) as e:  # refused while parsing: a usage error
        _parse("--concurrency", "0")
    assert e.value.code == 2 and "expected an integer >= 1, not '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _worker_config(_parse("--min-concurrency", "50", "--max-concurrency", "20"))
    assert e.value.code == 2 and "must not exceed" in capsys.readouterr().err
    # supervised children stay adaptive, with the same bounds
    adaptive = WorkerConfig(min_concurrency=4, max_concurrency=300)
    argv = child_command("redis://h:1/0", "m:app", adaptive, 0)
    assert "--concurrency" not in argv and "--batch" not in argv
    assert _worker_config(build_parser().parse_args(argv[3:])) == adaptive
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "--help"])
    assert "default: adaptive" in " ".join(capsys.readouterr().out.split())


async def test_a_worker_with_defaults_grows_its_limit_on_a_backlog_of_no_ops(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def noop(ctx: Context) -> None:
        return None

    async with client(url) as c:
        accepted = await c.send_many(svc.name, "noop", [None] * 3000)
        async with running(svc, url, heartbeat_interval=0.2) as w:
            assert w.rt.limiter.capacity == INITIAL
            beat = await wait_until(
                lambda: _grown_beat(c, svc.name, w.consumer), timeout=60, what="a heartbeat past 100"
            )
            assert beat > INITIAL and w.rt.batch == min(MAX_BATCH, w.rt.limiter.capacity // 2)
            for a in accepted:
                await c.result(a.id, 60)


async def _grown_beat(c: Any, service: str, consumer: str) -> int:
    doc = await c.redis.get(c.keys(service).consumer(consumer))
    n = (decode_heartbeat(doc).concurrency or 0) if doc is not None else 0
    return n if n > INITIAL else 0


async def test_a_narrow_shared_downstream_keeps_the_limit_well_below_100(url: str, names: Names) -> None:
    svc = Service(names())
    downstream = asyncio.Semaphore(5)  # 5 uses at once, ~10 ms each: 500 per second, whatever the limit
    peak = 0

    @svc.handler
    async def call(ctx: Context) -> None:
        async with downstream:
            await asyncio.sleep(0.01)

    async with client(url) as c:
        accepted = await c.send_many(svc.name, "call", [None] * 800)
        async with running(svc, url) as w:
            for a in accepted:
                await c.result(a.id, 60)
                peak = max(peak, w.rt.limiter.capacity)
            # the sojourn's target (2 x 10 ms + 25 ms) holds at about 20 at once; growth by
            # sqrt(limit) steps past it before the next window shrinks it, and a loaded machine's
            # slower loop adds to the sojourn: half the start is "well below", with room for both
            assert w.rt.limiter.capacity <= INITIAL // 2, w.rt.limiter.capacity
            assert peak <= INITIAL


async def test_an_explicit_concurrency_is_a_cap_that_never_adapts(url: str, names: Names) -> None:
    svc = Service(names())
    now = peak = 0

    @svc.handler
    async def job(ctx: Context) -> None:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.002)  # flat: the adaptive rule would grow past 7
        now -= 1

    config = _worker_config(_parse("--concurrency", "7"))
    async with client(url) as c:
        accepted = await c.send_many(svc.name, "job", [None] * 600)
        async with running(svc, url, concurrency=config.concurrency) as w:
            for a in accepted:
                await c.result(a.id, 60)
            assert w.rt.adapt is None and w.rt.limiter.capacity == 7 and w.rt.batch == 100
    assert peak == 7


async def test_a_handler_that_blocks_the_loop_drives_the_limit_to_the_floor(url: str, names: Names) -> None:
    """Each run blocks the event loop 10 ms: a batch of 50 holds its last entry 0.5 s before it
    starts, past lease / 10 (the lease is 2 s here): the limit halves until a batch is short, and
    no lease is lost."""
    svc = Service(names())
    runs: dict[int, int] = {}

    @svc.handler
    async def block(ctx: Context, i: int) -> None:
        runs[i] = runs.get(i, 0) + 1
        time.sleep(0.01)  # noqa: ASYNC251 - the point: it blocks the loop

    async with client(url) as c:
        accepted = await c.send_many(svc.name, "block", list(range(300)))
        async with running(svc, url, visibility_timeout=2.0) as w:
            for a in accepted:
                await c.result(a.id, 60)
            # from 100 down to about 2 x FLOOR: the limit then moves between halving and growing
            # (with several read loops claiming at once, 13-38 at the end of the run)
            assert w.rt.limiter.capacity <= 4 * FLOOR, w.rt.limiter.capacity
            assert w.settler.fenced == 0
    assert runs == dict.fromkeys(range(300), 1)  # no lease lost: each ran once
