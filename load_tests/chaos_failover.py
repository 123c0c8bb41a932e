"""``make chaos-failover``: SIGKILL a Cluster primary that has a replica, mid-load, and let the
replica take over; count what was lost or duplicated, once per gateway durability level.

    .venv/bin/python -m load_tests.chaos_failover                      # none, then replicas:1
    .venv/bin/python -m load_tests.chaos_failover --durability replicas:1 --n 1000 --kills 1

Per durability level, a fresh run:

- a local Valkey Cluster (``EmbeddedCluster``: 3 primaries with 1 replica each, AOF,
  ``appendfsync always``, ``cluster-node-timeout`` ``--node-timeout`` ms);
- the chaos service (``load_tests.chaos_app``, its witness outside Valkey) with 3 partitions,
  under a name whose 3 partitions land on 3 distinct primaries;
- 2 ``reliq gateway`` processes (``RELIQ_DURABILITY`` = the level) and 2 ``reliq worker``
  processes, supervised as in ``make chaos`` (chaos_proc), all on the ``redis+cluster://`` URL;
- the chaos client (chaos_client): N keyed ``POST /send``, each retried with the same
  Idempotency-Key on 5xx, 429, timeouts and connection errors until a 2xx;
- ``--kills`` times, spread over the load: SIGKILL the primary owning partition ``(1 + i) % 3`` (only
  when it has an online replica), wait until a surviving node reports the replica as the slot's
  owner with ``cluster_state:ok`` (automatic failover), restart the killed node ``--restart-after``
  seconds later (it rejoins as a replica of the promoted node and resyncs), wait until it is
  linked, then go on;
- drain, snapshot every partition, and run the chaos checker (chaos_check) on the run directory.

Reported per level: acked-but-lost, duplicated effects, unconfirmed attempts (503) and the other
unknown outcomes, duplicate executions, and per kill the time to promotion, to the first ack and
the first execution on the killed partition, and to the old node serving as a replica again.
Exit status 1 when a ``replicas:N`` run lost an acknowledged invocation, or when any run left
work stuck or a key never acknowledged; losses and duplicate effects under ``none`` are what this
measures, not failures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shutil
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from reliq import Client
from reliq.devserver.cluster import EmbeddedCluster
from reliq.store.keys import GROUP, key_token, keyed_id, locate, partition_of_token
from reliq.store.record import TERMINAL

from . import chaos_check
from .chaos_app import Witness
from .chaos_check import Report, check, read_witness
from .chaos_client import Attempt, Load, Plan, Workload, read_history
from .chaos_nemesis import Fault
from .chaos_proc import ProcEvent, System
from .chaos_promise import Resolver, read_resolutions
from .chaos_snapshot import Pending, Snapshot, children_states, key_states
from .cluster_util import acall, aowner, replication, slot_of, spawn, spread_service, until

RESULTS = Path(__file__).resolve().parent / "results"
PARTITIONS = 3


class Kill(msgspec.Struct, kw_only=True):
    """One primary kill (unix seconds; ``None``: did not happen before the deadline)."""

    partition: int
    port: int
    replica_port: int
    t_kill: float
    t_down: float | None = None  # a surviving node first reported cluster_state:fail
    t_promoted: float | None = None
    t_restarted: float | None = None
    t_linked: float | None = None
    new_owner: int | None = None


class Config(msgspec.Struct, kw_only=True):
    durability: str = "replicas:1"
    n: int = 3000
    duration: float = 40.0
    kills: int = 3
    node_timeout_ms: int = 1500
    restart_after: float = 1.0
    sync_delay: int = 0  # repl-diskless-sync-delay, s
    first_partition: int = 1  # kill i hits partition (first + i) % 3; 0 also holds the layout
    workers: int = 2
    gateways: int = 2
    visibility: float = 3.0
    seed: int = 1
    retry_grace: float = 60.0
    drain_timeout: float = 90.0
    keep: bool = False
    workload: Workload = "work"


class Result(msgspec.Struct, kw_only=True):
    config: Config
    service: str
    report: Report
    kills: list[Kill]
    summary: dict[str, Any]
    workdir: str


class ClusterSystem(System):
    """chaos_proc's gateways and workers, with the service name and durability level in their
    environment (not the harness's own)."""

    extra_env: dict[str, str]

    def _env(self, **extra: str) -> dict[str, str]:
        return {**super()._env(), **getattr(self, "extra_env", {}), **extra}


def _partition(service: str, key: str) -> int:
    return partition_of_token(key_token(service, key), PARTITIONS)


async def _primary_kills(
    cfg: Config, cluster: EmbeddedCluster, service: str, stop: asyncio.Event, kills: list[Kill]
) -> None:
    """The nemesis: ``cfg.kills`` primary kills spread over the load window."""
    window = cfg.duration * 0.8
    t0 = time.monotonic()
    by_port = {n.port: n for n in cluster.nodes}
    for i in range(cfg.kills):
        at = t0 + window * (i + 1) / (cfg.kills + 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, at - time.monotonic()))
        if stop.is_set():
            return
        p = (cfg.first_partition + i) % PARTITIONS
        slot = slot_of(service, p)
        live = [n.port for n in cluster.nodes if n.proc is not None and n.proc.poll() is None]
        views = [o for o in await asyncio.gather(*(aowner(port, slot) for port in live)) if o]
        if not views:
            print(f"kill {i}: no node reports an owner for partition {p}; skipped", flush=True)
            continue
        port = Counter(views).most_common(1)[0][0]
        repl = await replication(port)
        replica = repl.get("slave0")
        if not isinstance(replica, dict) or replica.get("state") != "online":
            print(f"kill {i}: primary {port} of partition {p} has no online replica; skipped", flush=True)
            continue
        replica_port = int(replica["port"])
        node = by_port[port]
        k = Kill(partition=p, port=port, replica_port=replica_port, t_kill=time.time())
        kills.append(k)
        node.kill()  # SIGKILL, and reap it
        print(f"kill {i}: SIGKILLed primary {port} (partition {p}); replica {replica_port}", flush=True)
        others = [q for q in live if q != port]

        async def promoted(
            slot: int = slot, others: list[int] = others, port: int = port, k: Kill = k
        ) -> bool:
            seen = await asyncio.gather(*(aowner(q, slot) for q in others))
            if k.t_down is None and any(o is None for o in seen):
                k.t_down = time.time()
            return any(o is not None and o != port for o in seen)

        with contextlib.suppress(TimeoutError):
            await until("promotion", 30, promoted, pause=0.02)
            k.t_promoted = time.time()
            k.new_owner = next(o for o in await asyncio.gather(*(aowner(q, slot) for q in others)) if o)
        await asyncio.sleep(cfg.restart_after)
        spawn(node)
        k.t_restarted = time.time()

        async def linked(port: int = port) -> bool:
            r = await replication(port)
            return r.get("role") == "slave" and r.get("master_link_status") == "up"

        with contextlib.suppress(TimeoutError):
            await until("the old primary to resync as a replica", 30, linked, pause=0.05)
            k.t_linked = time.time()
        print(
            f"kill {i}: promoted after {_dt(k.t_kill, k.t_promoted)} s, old node linked as a replica "
            f"after {_dt(k.t_kill, k.t_linked)} s",
            flush=True,
        )


def _dt(a: float, b: float | None) -> str:
    return "-" if b is None else f"{b - a:.2f}"


async def _unsettled(client: Client, service: str, ids: list[str]) -> int:
    """Acked invocations not finished, plus entries in streams and delayed sets. One cluster
    pipeline, not concurrent commands: redis-py's async RedisCluster can fail every in-flight
    command (``MaxConnectionsError``, ``'NoneType' object has no attribute 'writelines'``) when
    many run at once while a node reconnects."""
    async with client.redis.pipeline(transaction=False) as p:
        for inv in ids:
            p.hget(client.keys_of(inv).inv(inv), "state")
        states = await p.execute()
    open_ = sum(1 for s in states if s is None or s.decode() not in TERMINAL)
    for k in await client.partition_keys(service):
        open_ += int(await client.redis.xlen(k.stream)) + int(await client.redis.zcard(k.delayed))
        open_ += int(await client.redis.zcard(k.suspended)) + int(await client.redis.xlen(k.outbox))
    return open_


async def _snapshot(client: Client, service: str, keys: list[str], acked: dict[str, str]) -> Snapshot:
    states = await key_states(client, {k: acked.get(k) or keyed_id(service, k, PARTITIONS) for k in keys})
    pending: list[Pending] = []
    lost = stream_len = delayed = suspended = outbox = 0
    for k in await client.partition_keys(service):
        for p in await client.redis.xpending_range(k.stream, GROUP, "-", "+", 1000):
            pending.append(
                Pending(
                    entry=p["message_id"].decode(),
                    consumer=p["consumer"].decode(),
                    idle_ms=int(p["time_since_delivered"]),
                    deliveries=int(p["times_delivered"]),
                )
            )
        lost += int(await client.redis.xlen(k.lost))
        stream_len += int(await client.redis.xlen(k.stream))
        delayed += int(await client.redis.zcard(k.delayed))
        suspended += int(await client.redis.zcard(k.suspended))
        outbox += int(await client.redis.xlen(k.outbox))
    k0 = client.keys(service)
    node = await client.topology.node_for(k0.consumer_prefix)
    live = [c.decode()[len(k0.consumer_prefix) :] async for c in node.scan_iter(k0.consumer_prefix + "*")]
    return Snapshot(
        keys=states,
        parked=await client.parked(service, limit=1000),
        pending=pending,
        live_consumers=live,
        lost_entries=lost,
        stream_len=stream_len,
        delayed=delayed,
        children=await children_states(client, states),
        suspended=suspended,
        outbox=outbox,
    )


async def execute(cfg: Config, workdir: Path) -> Result:
    Witness.create(workdir / "witness.db")
    plan = Plan.make(cfg.n, f"f{cfg.seed}", False, cfg.workload)
    (workdir / "plan.json").write_bytes(msgspec.json.encode(plan))
    cluster = EmbeddedCluster(
        workdir / "cluster", primaries=3, replicas=1, node_timeout_ms=cfg.node_timeout_ms
    ).start()
    for node in cluster.nodes:  # a restarted node resyncs at once (Valkey's default waits 5 s)
        await acall(node.port, "CONFIG", "SET", "repl-diskless-sync-delay", str(cfg.sync_delay))
    service = spread_service("fo", PARTITIONS, cluster.nodes[0].port)
    system = ClusterSystem(workdir, n_gateways=cfg.gateways, n_workers=cfg.workers, visibility=cfg.visibility)
    system.extra_env = {"RELIQ_CHAOS_SERVICE": service, "RELIQ_DURABILITY": cfg.durability}
    system.valkey.held = True  # the cluster is not a chaos_proc slot
    system.proxy_url = cluster.url  # what gateways and workers connect to
    stop_sup, stop_nem = asyncio.Event(), asyncio.Event()
    kills: list[Kill] = []
    load: Load | None = None
    try:
        async with Client(cluster.url) as client, Client(cluster.url) as promised:
            await client.set_partitions(service, PARTITIONS)
            system.restart_dead()
            sup = asyncio.create_task(system.supervise(stop_sup))
            k0 = client.keys(service)

            async def up() -> bool:
                node = await client.topology.node_for(k0.consumer_prefix)
                live = [c async for c in node.scan_iter(k0.consumer_prefix + "*")]
                return len(live) >= cfg.workers and all(g.ready for g in system.gateways)

            await until("workers and gateways", 60, up, pause=0.1)
            urls = [system.gateway_url(i) for i in range(cfg.gateways)]
            load = Load(
                plan, urls, service, workdir / "history.jsonl", seed=cfg.seed, window=cfg.duration * 0.8
            )
            give_up = time.monotonic() + cfg.duration + cfg.retry_grace
            resolver = Resolver(promised, workdir / "promises.jsonl", seed=cfg.seed, give_up_at=give_up)
            on_ack = resolver.start if cfg.workload == "tree" else None
            load_task = asyncio.create_task(load.run(give_up, on_ack))
            nem = asyncio.create_task(_primary_kills(cfg, cluster, service, stop_nem, kills))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(nem), cfg.duration)
            stop_nem.set()
            await nem
            await load_task
            await resolver.wait()
            print(f"load done ({len(load.acked)} acked); draining", flush=True)
            ids = list(load.acked.values())

            async def drained() -> bool:
                # a fresh client each time: after failovers redis-py's RedisCluster can be left
                # with only dead startup nodes ("Redis Cluster cannot be connected")
                try:
                    async with Client(cluster.url) as fresh:
                        return await _unsettled(fresh, service, ids) == 0
                except Exception as e:
                    print(f"drain poll failed: {e!r}", flush=True)
                    return False

            with contextlib.suppress(TimeoutError):
                await until("drain", cfg.drain_timeout, drained, pause=0.2)
            async with Client(cluster.url) as fresh:
                snap = await _snapshot(fresh, service, plan.keys, load.acked)
            stop_sup.set()
            await sup
    finally:
        stop_sup.set()
        system.close()
        cluster.stop()
        _lines(workdir / "procs.jsonl", system.events)
        faults = [
            Fault(
                nemesis="kill-primary",
                target=f"partition {k.partition} primary {k.port}",
                start=k.t_kill,
                heal=k.t_promoted or k.t_kill,
                detail=f"replica {k.replica_port}",
            )
            for k in kills
        ]
        _lines(workdir / "faults.jsonl", faults)
        (workdir / "kills.json").write_bytes(msgspec.json.encode(kills))
    (workdir / "snapshot.json").write_bytes(msgspec.json.encode(snap))
    report = recheck(workdir, service, cfg.visibility)
    history = read_history(workdir / "history.jsonl")
    summary = summarize(service, history, kills, workdir / "witness.db", report)
    return Result(
        config=cfg, service=service, report=report, kills=kills, summary=summary, workdir=str(workdir)
    )


def _lines(path: Path, items: list[Any]) -> None:
    enc = msgspec.json.Encoder()
    path.write_bytes(b"".join(enc.encode(x) + b"\n" for x in items))


def recheck(workdir: Path, service: str, visibility: float) -> Report:
    """The chaos checker over the run directory, with ids derived for a 3-partition service."""
    plan = msgspec.json.decode((workdir / "plan.json").read_bytes(), type=Plan)
    faults = [msgspec.json.decode(x, type=Fault) for x in _read_lines(workdir / "faults.jsonl")]
    procs = [msgspec.json.decode(x, type=ProcEvent) for x in _read_lines(workdir / "procs.jsonl")]
    snap = msgspec.json.decode((workdir / "snapshot.json").read_bytes(), type=Snapshot)
    history = read_history(workdir / "history.jsonl")
    promises = read_resolutions(workdir / "promises.jsonl")
    original = chaos_check.keyed_id  # the checker compares acked ids with keyed_id(service, key)
    chaos_check.keyed_id = lambda s, k: keyed_id(s, k, PARTITIONS)  # type: ignore[assignment]
    try:
        witness, logs = workdir / "witness.db", workdir / "logs"
        return check(service, plan, history, faults, procs, snap, witness, visibility, promises, logs)
    finally:
        chaos_check.keyed_id = original  # type: ignore[assignment]


def _read_lines(path: Path) -> list[bytes]:
    return [x for x in path.read_bytes().splitlines() if x.strip()] if path.exists() else []


def summarize(
    service: str, history: list[Attempt], kills: list[Kill], witness: Path, report: Report
) -> dict[str, Any]:
    """The failover numbers: outcomes of attempts and, per kill, the recovery times."""
    status = Counter(a.status for a in history if a.outcome == "unknown")
    details = Counter(
        (a.detail.split('"detail":"')[1].split('"')[0][:70] if '"detail":"' in a.detail else a.detail[:70])
        for a in history
        if a.outcome == "unknown"
    )
    executions, _, _ = read_witness(witness)
    ex_by_part: dict[int, list[float]] = {p: [] for p in range(PARTITIONS)}
    import sqlite3

    db = sqlite3.connect(witness)
    try:
        for inv, ts in db.execute("SELECT inv_id, ts FROM executions"):
            ex_by_part[locate(inv)[1]].append(float(ts))
    finally:
        db.close()
    acks: dict[int, list[float]] = {p: [] for p in range(PARTITIONS)}
    for a in history:
        if a.outcome == "ok":
            acks[_partition(service, a.key)].append(a.t1)
    per_kill = []
    for k in kills:
        first_ack = min((t - k.t_kill for t in acks[k.partition] if t > k.t_kill), default=None)
        first_ex = min((t - k.t_kill for t in ex_by_part[k.partition] if t > k.t_kill), default=None)
        started = [a for a in history if a.t0 >= k.t_kill and _partition(service, a.key) == k.partition]
        # acked requests started after the kill, on the killed partition: first one's answer
        first_new = min((a.t1 - k.t_kill for a in started if a.outcome == "ok"), default=None)
        others = sorted(t for p, ts in acks.items() if p != k.partition for t in ts)
        gaps = [b - a for a, b in itertools.pairwise(others) if k.t_kill - 1 <= a <= k.t_kill + 15]
        per_kill.append(
            {
                "partition": k.partition,
                "killed": k.port,
                "promoted": k.new_owner,
                "cluster_state_fail_seen_s": _r(k.t_down, k.t_kill),
                "promotion_s": _r(k.t_promoted, k.t_kill),
                "first_ack_killed_partition_s": _round(first_ack),
                "first_ack_of_request_sent_after_kill_s": _round(first_new),
                "first_execution_killed_partition_s": _round(first_ex),
                "old_node_linked_as_replica_s": _r(k.t_linked, k.t_kill),
                "longest_ack_gap_other_partitions_s": _round(max(gaps, default=None)),
            }
        )
    lost_keys = report.examples.get("lost", [])
    return {
        "acked": report.counters["acked"],
        "lost (acked, never executed or no record)": report.violations["lost"],
        "duplicated effects": report.violations["duplicated effects"],
        "attempts": len(history),
        "unconfirmed (503)": status.get(503, 0),
        "other unknown outcomes (timeouts, connection errors, other 5xx)": sum(status.values())
        - status.get(503, 0),
        "unknown by status": {str(k): v for k, v in status.items()},
        "unknown by detail": dict(details.most_common(8)),
        "duplicate executions": report.counters["duplicate executions"],
        "effects re-run (died before journal)": report.counters["effects re-run (died before journal)"],
        "lost examples": lost_keys,
        "kills": per_kill,
        "executions": len(executions),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _r(b: float | None, a: float) -> float | None:
    return None if b is None else round(b - a, 2)


def run(cfg: Config, results: Path = RESULTS) -> Result:
    tag = cfg.durability.replace(":", "")
    workdir = results / time.strftime(f"failover-%Y%m%dT%H%M%SZ-{tag}", time.gmtime())
    workdir.mkdir(parents=True, exist_ok=False)
    res = asyncio.run(execute(cfg, workdir))
    (workdir / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(res)))
    if not cfg.keep and not failed(res):
        shutil.rmtree(workdir)
    return res


def failed(res: Result) -> list[str]:
    """What makes ``make chaos-failover`` exit 1 (see the module docstring)."""
    v = res.report.violations
    why = [f"{name}: {v[name]}" for name in ("stuck", "never acked", "conflicting ids") if v[name]]
    if res.config.durability.startswith("replicas:") and v["lost"]:
        why.append(f"lost under {res.config.durability}: {v['lost']}")
    return why


def markdown(results: list[Result]) -> str:
    heads = [r.config.durability for r in results]
    rows: list[tuple[str, list[Any]]] = [
        ("invocations (keys)", [r.config.n for r in results]),
        ("acked", [r.summary["acked"] for r in results]),
        ("primary kills (each: failover to its replica)", [len(r.kills) for r in results]),
        ("**acked but lost**", [r.summary["lost (acked, never executed or no record)"] for r in results]),
        ("**duplicated effects**", [r.summary["duplicated effects"] for r in results]),
        ("attempts", [r.summary["attempts"] for r in results]),
        ("unconfirmed (503), retried", [r.summary["unconfirmed (503)"] for r in results]),
        (
            "other unknown (timeouts, connection errors)",
            [r.summary["other unknown outcomes (timeouts, connection errors, other 5xx)"] for r in results],
        ),
        (
            "unexpected worker/gateway exits",
            [r.report.counters["unexpected worker/gateway exits"] for r in results],
        ),
        ("duplicate executions (allowed)", [r.summary["duplicate executions"] for r in results]),
        (
            "effects re-run before journal (allowed)",
            [r.summary["effects re-run (died before journal)"] for r in results],
        ),
    ]
    for name in chaos_check.VIOLATIONS:
        if name in ("lost", "duplicated effects"):
            continue
        rows.append((f"{name}", [r.report.violations[name] for r in results]))

    def med(r: Result, field: str) -> str:
        xs = [k[field] for k in r.summary["kills"] if k[field] is not None]
        if not xs:
            return "-"
        return f"{statistics.median(xs):.2f} / {max(xs):.2f}"

    for label, field in (
        ("kill → a survivor reports cluster_state:fail (median / max s)", "cluster_state_fail_seen_s"),
        ("kill → replica promoted, cluster_state:ok", "promotion_s"),
        ("kill → first ack on the killed partition", "first_ack_killed_partition_s"),
        ("kill → first ack of a request sent after the kill", "first_ack_of_request_sent_after_kill_s"),
        ("kill → first execution on the killed partition", "first_execution_killed_partition_s"),
        ("longest gap between acks on the other partitions", "longest_ack_gap_other_partitions_s"),
        ("kill → old primary resynced as a replica", "old_node_linked_as_replica_s"),
    ):
        rows.append((label, [med(r, field) for r in results]))
    lines = ["| | " + " | ".join(f"durability `{h}`" for h in heads) + " |", "|---|" + "--:|" * len(heads)]
    lines += [f"| {name} | " + " | ".join(str(v) for v in vals) + " |" for name, vals in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m load_tests.chaos_failover", description=__doc__.split("\n")[0]
    )
    p.add_argument("--durability", default="none,replicas:1", help="comma list of gateway levels")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--duration", type=float, default=40.0, help="seconds of load (kills in its first 80 %%)")
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--node-timeout", type=int, default=1500, help="cluster-node-timeout, ms")
    p.add_argument("--restart-after", type=float, default=1.0, help="s after promotion")
    p.add_argument("--sync-delay", type=int, default=0, help="repl-diskless-sync-delay (Valkey: 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workload", choices=["work", "tree"], default="work", help="one handler, or trees")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--results", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    for level in a.durability.split(","):
        cfg = Config(
            durability=level.strip(),
            n=a.n,
            duration=a.duration,
            kills=a.kills,
            node_timeout_ms=a.node_timeout,
            restart_after=a.restart_after,
            sync_delay=a.sync_delay,
            seed=a.seed,
            keep=a.keep,
            workload=a.workload,
        )
        print(
            f"chaos-failover: workload={cfg.workload} durability={cfg.durability} n={cfg.n} "
            f"kills={cfg.kills}",
            flush=True,
        )
        res = run(cfg, a.results)
        print(msgspec.json.format(msgspec.json.encode(res.summary)).decode(), flush=True)
        results.append(res)
    md = markdown(results)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / f"failover-{stamp}.json").write_bytes(msgspec.json.format(msgspec.json.encode(results)))
    (a.results / "failover-latest.md").write_text(md + "\n")
    print(md)
    why = [f"{r.config.durability}: {w}" for r in results for w in failed(r)]
    if why:
        print("FAILED: " + "; ".join(why))
        raise SystemExit(1)
    print("OK: nothing acknowledged under replicas:N was lost; nothing stuck")


if __name__ == "__main__":
    main()
