"""The handlers the chaos harness runs (``reliq worker load_tests.chaos_app:app``), and the witness
they write to: a SQLite database (WAL) outside Valkey, so the checker never has to trust the
system under test about what ran.

- ``work``: records the execution, then performs its side effect through ``ctx.step("effect")``.
  The effect is one INSERT with no unique constraint: only ``ctx.step`` stands between a retry and
  a second row. Poison jobs (``kind="fail"``) always raise, so they end parked.
- ``keyed`` (``--workload flow``): ``work`` under a per-key limit of 1 (``concurrency_key``);
  it also writes the end of each completed run (``holds``), for the mutual-exclusion check.
- ``crash``: SIGKILLs its own worker process; reliq must park it as a crash loop.
- ``tree`` (``--workload tree``): a parent that journals its own effect, calls three children
  (``leaf`` and ``nap`` at once through ``asyncio.gather``, then ``leaf``), the napper in a durable
  ``ctx.sleep``, and waits in between for the promise ``approve``, which the chaos client
  resolves; it returns its effect's nonce, its children's results and the promise's value, so
  the checker can see that each child's outcome reached its parent once.
- ``comp`` (``--workload cancel``): a parent that journals its effect, works a little outside any
  step, then calls ``hold`` (its effect, then the promise ``go`` the client resolves) and ``nap``;
  the client cancels some parents. On ``Cancelled`` it writes a ``compensations`` row, calls
  ``undo`` (its effect, then a durable sleep longer than ``suspend_after``: the compensation
  suspends), journals ``ctx.step("undo")`` (an effect row keyed ``<key>:undo``) and re-raises.

Tables (created by the harness before any worker starts, see ``Witness.create``):
``executions(key, inv_id, worker_pid, attempt, kind, ts)``,
``effects(key, inv_id, step, nonce, worker_pid, ts)``,
``holds(account, key, worker_pid, ts)`` (the end of a completed ``keyed`` run),
``compensations(key, inv_id, worker_pid, ts)`` (each run of ``comp`` that entered ``except Cancelled``),
``journal(key, inv_id, nonce, outcome, worker_pid, ts)``: ``unjournaled`` when ``ctx.step``
raised after the effect may have run (cancelled, Redis error), ``lease-lost`` when it raised
``LeaseLost`` after the effect ran: a step body that ran while another worker may have held the
invocation (the checker counts them: a step body must not start past the local lease).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

import msgspec

from reliq import App, Cancelled, Context, LeaseLost, Service

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions(key TEXT, inv_id TEXT, worker_pid INT, attempt INT, kind TEXT, ts REAL);
CREATE TABLE IF NOT EXISTS effects(key TEXT, inv_id TEXT, step TEXT, nonce TEXT, worker_pid INT, ts REAL);
CREATE TABLE IF NOT EXISTS journal(key TEXT, inv_id TEXT, nonce TEXT, outcome TEXT, worker_pid INT, ts REAL);
CREATE TABLE IF NOT EXISTS holds(account TEXT, key TEXT, worker_pid INT, ts REAL);
CREATE TABLE IF NOT EXISTS compensations(key TEXT, inv_id TEXT, worker_pid INT, ts REAL);
"""


class Job(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    kind: Literal["ok", "fail"] = "ok"
    ms: int = 0  # simulated work before and after the effect: keeps invocations in flight


class Witness:
    """Append-only records in SQLite; one connection per process. Handlers write on the event
    loop on purpose (a write takes well under a millisecond): no thread can outlive a cancelled
    handler and write behind its back."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @staticmethod
    def create(path: str | Path) -> None:
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.commit()
        finally:
            db.close()

    def _write(self, sql: str, row: tuple[object, ...]) -> None:
        with self._lock:
            if self._db is None:
                # a commit in WAL mode survives a SIGKILL of this process (not a power loss)
                self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(sql, row)
            self._db.commit()

    def execution(self, key: str, inv: str, attempt: int, kind: str) -> None:
        row = (key, inv, os.getpid(), attempt, kind, time.time())
        self._write("INSERT INTO executions VALUES (?,?,?,?,?,?)", row)

    def compensation(self, key: str, inv: str) -> None:
        row = (key, inv, os.getpid(), time.time())
        self._write("INSERT INTO compensations VALUES (?,?,?,?)", row)

    def effect(self, key: str, inv: str, step: str) -> str:
        nonce = uuid.uuid4().hex
        self._write(
            "INSERT INTO effects VALUES (?,?,?,?,?,?)", (key, inv, step, nonce, os.getpid(), time.time())
        )
        return nonce

    def held(self, account: str, key: str) -> None:
        """The end of a ``keyed`` run that completed (its start is its ``executions`` row)."""
        self._write("INSERT INTO holds VALUES (?,?,?,?)", (account, key, os.getpid(), time.time()))

    def unjournaled(self, key: str, inv: str, nonce: str, outcome: str = "unjournaled") -> None:
        row = (key, inv, nonce, outcome, os.getpid(), time.time())
        self._write("INSERT INTO journal VALUES (?,?,?,?,?,?)", row)


SERVICE = os.environ.get("RELIQ_CHAOS_SERVICE", "chaos")
witness = Witness(os.environ.get("RELIQ_CHAOS_WITNESS", "chaos-witness.db"))
svc = Service(SERVICE)


async def witnessed(ctx: Context, key: str, step: str = "effect") -> str:
    """The side effect of ``key`` through ``ctx.step(step)``: one witness row per run of the
    step; a row whose journal write raised is reported ``unjournaled``. Returns its nonce."""
    made: list[str] = []

    async def effect() -> str:
        # no await inside: a cancellation cannot land between the insert and ``made``
        nonce = witness.effect(key, ctx.id, step)
        made.append(nonce)
        return nonce

    try:
        nonce: str = await ctx.step(step, effect)
    except BaseException as e:
        outcome = "lease-lost" if isinstance(e, LeaseLost) else "unjournaled"
        for n in made:  # the effect ran but its journal did not land (or we cannot tell)
            witness.unjournaled(key, ctx.id, n, outcome)
        raise
    return nonce


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5)
async def work(ctx: Context, job: Job) -> str:
    witness.execution(job.key, ctx.id, ctx.attempt, job.kind)
    if job.kind == "fail":
        raise RuntimeError(f"poison job {job.key}")
    await asyncio.sleep(job.ms / 1000)
    nonce = await witnessed(ctx, job.key)
    # journaled but not yet completed: a crash here must replay the step, not redo the effect
    await asyncio.sleep(job.ms / 1000)
    return nonce


class Tree(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    ms: int = 0  # simulated work after the parent's effect
    nap_ms: int = 500  # the napper child's durable sleep


class Node(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # the parent's key + "/<position>"
    nap_ms: int = 0


class TreeResult(msgspec.Struct, frozen=True, kw_only=True):
    effect: str  # the parent's journaled nonce
    children: list[str]  # each child's journaled nonce, in call order
    promise: str  # the value the client resolved ``approve`` with


PROMISE = "approve"


def promise_value(key: str) -> str:
    """What the chaos client resolves a parent's promise with (the checker expects it back)."""
    return f"approved:{key}"


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def leaf(ctx: Context, node: Node) -> str:
    witness.execution(node.key, ctx.id, ctx.attempt, "leaf")
    return await witnessed(ctx, node.key)


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def nap(ctx: Context, node: Node) -> str:
    witness.execution(node.key, ctx.id, ctx.attempt, "nap")
    nonce = await witnessed(ctx, node.key)
    await ctx.sleep(node.nap_ms / 1000)  # longer than suspend_after: suspends, a timer wakes it
    return nonce


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def tree(ctx: Context, job: Tree) -> TreeResult:
    witness.execution(job.key, ctx.id, ctx.attempt, "tree")
    nonce = await witnessed(ctx, job.key)
    await asyncio.sleep(job.ms / 1000)
    first, napped = await asyncio.gather(
        ctx.call(leaf, Node(key=f"{job.key}/0")),
        ctx.call(nap, Node(key=f"{job.key}/1", nap_ms=job.nap_ms)),
    )
    value = await ctx.promise(PROMISE)
    last = await ctx.call(leaf, Node(key=f"{job.key}/2"))
    return TreeResult(effect=nonce, children=[first, napped, last], promise=str(value))


class Comp(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    ms: int = 0  # work outside any step, after the effect: a cancel lands on it as a task cancel
    nap_ms: int = 500  # the ``nap`` child's durable sleep
    undo_ms: int = 500  # the ``undo`` child's durable sleep (the compensation suspends on it)


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def hold(ctx: Context, node: Node) -> str:
    witness.execution(node.key, ctx.id, ctx.attempt, "hold")
    nonce = await witnessed(ctx, node.key)
    await ctx.promise("go")  # the client resolves it (or the parent's cancel walk ends this child)
    return nonce


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def undo(ctx: Context, node: Node) -> str:
    witness.execution(node.key, ctx.id, ctx.attempt, "undo")
    nonce = await witnessed(ctx, node.key)
    await ctx.sleep(node.nap_ms / 1000)  # longer than the parent's suspend_after: it suspends
    return nonce


@svc.handler(max_attempts=6, max_deliveries=10, backoff_base=0.05, backoff_max=0.5, suspend_after=0.1)
async def comp(ctx: Context, job: Comp) -> dict[str, object]:
    witness.execution(job.key, ctx.id, ctx.attempt, "comp")
    nonce = await witnessed(ctx, job.key)
    await asyncio.sleep(job.ms / 1000)
    try:
        held = await ctx.call(hold, Node(key=f"{job.key}/hold"), key="hold")
        napped = await ctx.call(nap, Node(key=f"{job.key}/nap", nap_ms=job.nap_ms), key="nap")
    except Cancelled:
        witness.compensation(job.key, ctx.id)
        await ctx.call(undo, Node(key=f"{job.key}/undo", nap_ms=job.undo_ms), key="undo")
        await witnessed(ctx, f"{job.key}:undo", "undo")
        raise
    return {"effect": nonce, "children": [held, napped]}


class Keyed(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    account: str
    ms: int = 0


@svc.handler(
    concurrency_key="account", concurrency_limit=1, max_attempts=6, max_deliveries=10, backoff_base=0.05
)
async def keyed(ctx: Context, job: Keyed) -> str:
    """``--workload flow``: at most one invocation per account runs at a time (the checker
    verifies it from the witness: each key's first start to its last end never overlaps another
    key's of the same account)."""
    witness.execution(job.key, ctx.id, ctx.attempt, "keyed")
    await asyncio.sleep(job.ms / 1000)
    nonce = await witnessed(ctx, job.key)
    await asyncio.sleep(job.ms / 1000)
    witness.held(job.account, job.key)
    return nonce


@svc.handler(max_deliveries=2)
async def crash(ctx: Context, job: Job) -> None:
    witness.execution(job.key, ctx.id, ctx.attempt, "crash")
    os.kill(os.getpid(), signal.SIGKILL)


app = App([svc])
