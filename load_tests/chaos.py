"""``make chaos``: a Jepsen-style fault harness with a checker (docs/reliability.md).

    .venv/bin/python -m load_tests.chaos --n 2000 --duration 60 --nemesis kill-worker,kill-valkey --seed 1
    .venv/bin/python -m load_tests.chaos --n 20000 --duration 300 --nemesis all
    .venv/bin/python -m load_tests.chaos --workload tree --n 400 --duration 30 --nemesis kill-worker
    .venv/bin/python -m load_tests.chaos --workload flow --n 1000 --duration 30 --nemesis kill-worker
    .venv/bin/python -m load_tests.chaos --workload cancel --n 300 --duration 30 --nemesis all
    .venv/bin/python -m load_tests.chaos --check load_tests/results/chaos-<ts>   # re-check a kept run

The harness owns every process of the system under test (chaos_proc), drives N idempotent
``POST /send`` requests through the gateways (chaos_client) while the nemeses break things
(chaos_nemesis), stops the faults, waits for the system to drain, and checks (chaos_check).
``--workload tree`` sends function trees instead (a parent, three children, a durable sleep, a
promise the client resolves: chaos_promise, chaos_check_tree). ``--workload flow`` sends a handler
limited to one invocation per account at a time (chaos_check_flow checks the exclusion).
``--workload cancel`` sends parents that compensate when cancelled and cancels half of them at
random moments (chaos_cancel; chaos_check_cancel checks the compensations).
It exits 1 on any violation and keeps the run directory (history.jsonl, witness.db,
faults.jsonl, procs.jsonl, snapshot.json, summary.json, logs, the Valkey AOF) for replay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from reliq import Client, logformat

from .chaos_app import Witness
from .chaos_cancel import Canceller, read_acts
from .chaos_check import Report, check, table
from .chaos_client import Load, Plan, Workload, read_history
from .chaos_nemesis import PROXY_NEMESES, Env, Fault, parse, run_all
from .chaos_proc import ProcEvent, System, wait_ping
from .chaos_promise import Resolver, read_resolutions
from .chaos_proxy import FaultProxy
from .chaos_snapshot import Snapshot, take_snapshot, unsettled

SERVICE = "chaos"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, kw_only=True)
class Config:
    n: int = 2000
    duration: float = 60.0
    nemeses: tuple[str, ...] = ("kill-worker", "kill-valkey", "poison")
    seed: int = 1
    workers: int = 3
    gateways: int = 2
    visibility: float = 3.0
    retry_grace: float = 60.0  # how long clients keep retrying after the faults stop
    drain_timeout: float = 120.0
    results: Path = RESULTS
    keep: bool = False
    workload: Workload = "work"


async def _until(what: str, timeout: float, probe: Callable[[], Awaitable[bool]]) -> None:
    """Poll an async predicate with a deadline."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def execute(cfg: Config, workdir: Path) -> Report:
    """Run the system under faults, drain, snapshot, check; write every artifact to ``workdir``."""
    Witness.create(workdir / "witness.db")
    poison = "poison" in cfg.nemeses and cfg.workload == "work"  # trees have no poison variant
    plan = Plan.make(cfg.n, f"s{cfg.seed}", poison, cfg.workload)
    (workdir / "plan.json").write_bytes(msgspec.json.encode(plan))
    system = System(workdir, n_gateways=cfg.gateways, n_workers=cfg.workers, visibility=cfg.visibility)
    stop_sup, stop_nem = asyncio.Event(), asyncio.Event()
    env: Env | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            system.start_valkey()
            await wait_ping(system.direct_url, 30)
            proxy: FaultProxy | None = None
            if PROXY_NEMESES & set(cfg.nemeses):
                proxy = await stack.enter_async_context(FaultProxy(system.valkey_port))
                system.proxy_url = proxy.url
            client = await stack.enter_async_context(Client(system.direct_url))
            system.restart_dead()  # starts every gateway and worker
            sup = asyncio.create_task(system.supervise(stop_sup))

            async def up() -> bool:
                live = [c async for c in client.redis.scan_iter(client.keys(SERVICE).consumer_prefix + "*")]
                return len(live) >= cfg.workers and all(g.ready for g in system.gateways)

            await _until("workers and gateways", 60, up)
            urls = [system.gateway_url(i) for i in range(cfg.gateways)]
            load = Load(
                plan, urls, SERVICE, workdir / "history.jsonl", seed=cfg.seed, window=cfg.duration * 0.8
            )
            give_up = time.monotonic() + cfg.duration + cfg.retry_grace
            # the promises go the workers' way to Valkey (through the proxy when there is one)
            promised = await stack.enter_async_context(Client(system.reliq_url))
            resolver = Resolver(promised, workdir / "promises.jsonl", seed=cfg.seed, give_up_at=give_up)
            canceller = Canceller(
                promised, SERVICE, workdir / "cancels.jsonl", seed=cfg.seed, give_up_at=give_up
            )
            on_ack = {"tree": resolver.start, "cancel": canceller.start}.get(cfg.workload)
            load_task = asyncio.create_task(load.run(give_up, on_ack))
            env = Env(system=system, proxy=proxy, stop=stop_nem, seed=cfg.seed)
            nem_task = asyncio.create_task(run_all(env, list(cfg.nemeses)))
            with contextlib.suppress(TimeoutError):  # the fault window (pacing, not waiting for an outcome)
                await asyncio.wait_for(stop_nem.wait(), cfg.duration)
            stop_nem.set()
            await nem_task
            print(
                f"faults stopped after {cfg.duration:.0f} s ({len(env.faults)} injected); draining",
                flush=True,
            )
            await load_task
            await resolver.wait()
            await canceller.wait()
            ids = list(load.acked.values())

            async def drained() -> bool:
                return await unsettled(client, SERVICE, ids) == 0

            with contextlib.suppress(TimeoutError):
                await _until("drain", cfg.drain_timeout, drained)
            snap = await take_snapshot(client, SERVICE, plan.keys, timelines=cfg.workload == "cancel")
            stop_sup.set()
            await sup
    finally:
        stop_sup.set()
        system.close()
        if env is not None:
            _write_lines(workdir / "faults.jsonl", env.faults)
        _write_lines(workdir / "procs.jsonl", system.events)
    (workdir / "snapshot.json").write_bytes(msgspec.json.encode(snap))
    return recheck(workdir, cfg.visibility)


def _write_lines(path: Path, items: list[Fault] | list[ProcEvent]) -> None:
    enc = msgspec.json.Encoder()
    path.write_bytes(b"".join(enc.encode(x) + b"\n" for x in items))


def recheck(workdir: Path, visibility: float) -> Report:
    """The checker over the files of a run directory (also for replaying a kept run)."""
    plan = msgspec.json.decode((workdir / "plan.json").read_bytes(), type=Plan)
    faults = [msgspec.json.decode(x, type=Fault) for x in _lines(workdir / "faults.jsonl")]
    procs = [msgspec.json.decode(x, type=ProcEvent) for x in _lines(workdir / "procs.jsonl")]
    snap = msgspec.json.decode((workdir / "snapshot.json").read_bytes(), type=Snapshot)
    history = read_history(workdir / "history.jsonl")
    promises = read_resolutions(workdir / "promises.jsonl")
    witness = workdir / "witness.db"
    acts = read_acts(workdir / "cancels.jsonl")
    return check(
        SERVICE, plan, history, faults, procs, snap, witness, visibility, promises, workdir / "logs", acts
    )


def _lines(path: Path) -> list[bytes]:
    return [x for x in path.read_bytes().splitlines() if x.strip()] if path.exists() else []


def run(cfg: Config) -> tuple[Report, Path]:
    """Run one chaos session; the run directory is removed on success unless ``cfg.keep``."""
    workdir = cfg.results / time.strftime("chaos-%Y%m%dT%H%M%SZ", time.gmtime())
    workdir.mkdir(parents=True, exist_ok=False)
    report = asyncio.run(execute(cfg, workdir))
    summary = {"config": {**cfg.__dict__, "results": str(cfg.results)}, "report": report}
    (workdir / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    if report.ok and not cfg.keep:
        shutil.rmtree(workdir)
    return report, workdir


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m load_tests.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="invocations (unique Idempotency-Keys)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of faults")
    p.add_argument("--nemesis", default="kill-worker,kill-valkey,poison", help="comma list, or all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--workload",
        choices=["work", "tree", "flow", "cancel"],
        default="work",
        help="one handler, trees, a per-key limited handler (flow), or cancelled compensating trees",
    )
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--gateways", type=int, default=2)
    p.add_argument("--visibility", type=float, default=3.0, help="worker visibility timeout (s)")
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--keep", action="store_true", help="keep the run directory even when it passes")
    p.add_argument("--check", type=Path, default=None, help="re-check a kept run directory and exit")
    a = p.parse_args(argv)
    if a.check is not None:
        summary = a.check / "summary.json"
        if summary.exists():  # the run's own visibility timeout, not the command line's
            a.visibility = msgspec.json.decode(summary.read_bytes())["config"]["visibility"]
        report, workdir = recheck(a.check, a.visibility), a.check
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup in finally
        # the library's warnings in this process (the client's), throttled as in reliq's own
        logformat.setup("WARNING", "text")
        cfg = Config(
            n=a.n,
            duration=a.duration,
            nemeses=tuple(parse(a.nemesis)),
            seed=a.seed,
            workers=a.workers,
            gateways=a.gateways,
            visibility=a.visibility,
            drain_timeout=a.drain_timeout,
            results=a.results,
            keep=a.keep,
            workload=a.workload,
        )
        print(
            f"chaos: workload={cfg.workload} n={cfg.n} duration={cfg.duration:.0f}s "
            f"nemeses={','.join(cfg.nemeses)} seed={cfg.seed}"
        )
        try:
            report, workdir = run(cfg)
        except KeyboardInterrupt:  # every child is gone already (execute's finally)
            print(f"interrupted; the partial run is in {cfg.results}/chaos-*", file=sys.stderr)
            raise SystemExit(130) from None
    print(table(report))
    if not report.ok:
        for name, examples in report.examples.items():
            print(f"{name}: {examples}")
        print(f"VIOLATIONS; history kept in {workdir}")
        raise SystemExit(1)
    print("OK: no violations")


if __name__ == "__main__":
    main()
