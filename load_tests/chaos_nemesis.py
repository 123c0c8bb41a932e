"""Nemeses: each injects one kind of fault on a fixed-seed schedule until told to stop, and
always heals what it broke. ``poison`` is not a process fault but a workload: it is applied by
the client plan (1 % of keys always fail, one payload kills its worker)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import msgspec

from .chaos_proc import Slot, System, wait_ping
from .chaos_proxy import FaultProxy, Mode


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """One fault: injected at ``start``, healed at ``heal`` (unix seconds). One line of faults.jsonl."""

    nemesis: str
    target: str
    start: float
    heal: float
    detail: str = ""


@dataclass
class Env:
    system: System
    proxy: FaultProxy | None
    stop: asyncio.Event
    seed: int
    faults: list[Fault] = field(default_factory=list)
    valkey_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    proxy_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def pause(self, seconds: float) -> bool:
        """Sleep (nemesis pacing); True when the run is over."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
            return True
        except TimeoutError:
            return False

    def record(self, nemesis: str, target: str, start: float, detail: str = "") -> None:
        self.faults.append(
            Fault(nemesis=nemesis, target=target, start=start, heal=time.time(), detail=detail)
        )


Nemesis = Callable[[Env, random.Random], Coroutine[None, None, None]]
ROUNDS = 100_000  # every nemesis loop is bounded in count as well as by the stop event


async def kill_worker(env: Env, rng: random.Random) -> None:
    """SIGKILL a random worker every 2-5 s and restart it at once (a crash and a supervisor)."""
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(2, 5)):
            return
        slot = rng.choice(env.system.workers)
        t = time.time()
        pid = env.system.kill(slot)
        env.system.restart(slot)
        env.record("kill-worker", f"worker-{slot.index}", t, f"pid {pid}")


def _cont(slot: Slot, pid: int | None) -> None:
    """SIGCONT ``pid`` only if it is still this slot's live process (never a recycled pid)."""
    p = slot.proc
    if pid is not None and p is not None and p.pid == pid and p.poll() is None:
        p.send_signal(signal.SIGCONT)


async def zombie_worker(env: Env, rng: random.Random) -> None:
    """SIGSTOP a worker for 1.5-2.5 visibility timeouts (its entries are reclaimed elsewhere),
    then SIGCONT it: it wakes up holding leases it no longer owns."""
    vt = env.system.visibility
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(3, 6)):
            return
        slot = rng.choice(env.system.workers)
        t = time.time()
        pid = env.system.signal(slot, signal.SIGSTOP)
        try:
            await asyncio.sleep(rng.uniform(1.5 * vt, 2.5 * vt))  # nemesis pacing
        finally:
            _cont(slot, pid)
        env.record("zombie-worker", f"worker-{slot.index}", t, f"pid {pid}")


async def kill_gateway(env: Env, rng: random.Random) -> None:
    """SIGKILL a random gateway every 3-6 s; restart it 0.2-1 s later."""
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(3, 6)):
            return
        slot = rng.choice(env.system.gateways)
        async with slot.lock:
            t = time.time()
            slot.held = True
            try:
                pid = env.system.kill(slot)
                await asyncio.sleep(rng.uniform(0.2, 1.0))
            finally:
                slot.held = False
                env.system.restart(slot)
            env.record("kill-gateway", f"gateway-{slot.index}", t, f"pid {pid}")


async def gateway_failpoint(env: Env, rng: random.Random) -> None:
    """Restart a gateway with ``RELIQ_FAILPOINTS=after_register:exit``: it dies right after its
    first registration batch is placed, before answering anyone; then it restarts normally."""
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(4, 8)):
            return
        slot = rng.choice(env.system.gateways)
        await slot.lock.acquire()
        t = time.time()
        slot.held = True
        tripped = False
        try:
            env.system.kill(slot)
            env.system.start_gateway(slot.index, failpoints="after_register:exit")
            armed = slot.proc
            for _ in range(200):  # wait for it to trip (or give up after ~10 s)
                if armed is None or armed.poll() is not None or await env.pause(0.05):
                    break
            tripped = armed is not None and armed.poll() == 137
            if slot.proc is armed:
                slot.expect_exit = True
                env.system.kill(slot)
        finally:
            slot.held = False
            env.system.restart(slot)
            slot.lock.release()
        env.record("gateway-failpoint", f"gateway-{slot.index}", t, "tripped" if tripped else "not tripped")


async def kill_valkey(env: Env, rng: random.Random) -> None:
    """SIGKILL Valkey every 5-10 s; restart it 0.5-2 s later from its AOF (same dir and port)."""
    s = env.system
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(5, 10)):
            return
        async with env.valkey_lock:
            t = time.time()
            s.valkey.held = True
            try:
                pid = s.kill(s.valkey)
                await asyncio.sleep(rng.uniform(0.5, 2.0))
            finally:
                s.start_valkey()
                s.valkey.held = False
            took = await wait_ping(s.direct_url, 60)
            env.record("kill-valkey", "valkey", t, f"pid {pid}; AOF reload {took:.2f} s")


async def pause_valkey(env: Env, rng: random.Random) -> None:
    """SIGSTOP Valkey for 2-5 s every 5-10 s, then SIGCONT."""
    s = env.system
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(5, 10)):
            return
        async with env.valkey_lock:
            t = time.time()
            pid = s.signal(s.valkey, signal.SIGSTOP)
            try:
                await asyncio.sleep(rng.uniform(2, 5))
            finally:
                _cont(s.valkey, pid)
            env.record("pause-valkey", "valkey", t)


def _proxy_fault(name: str, mode: Mode, low: float, high: float) -> Nemesis:
    async def run(env: Env, rng: random.Random) -> None:
        assert env.proxy is not None
        for _ in range(ROUNDS):
            if await env.pause(rng.uniform(5, 10)):
                return
            async with env.proxy_lock:
                t = time.time()
                env.proxy.set_mode(mode)
                try:
                    await asyncio.sleep(rng.uniform(low, high))
                finally:
                    env.proxy.set_mode("pass")
                env.record(name, "proxy", t)

    run.__doc__ = f"proxy in {mode!r} mode for {low}-{high} s every 5-10 s"
    return run


async def proxy_reset(env: Env, rng: random.Random) -> None:
    """Reset every reliq<->Valkey connection every 1-3 s."""
    assert env.proxy is not None
    for _ in range(ROUNDS):
        if await env.pause(rng.uniform(1, 3)):
            return
        t = time.time()
        n = env.proxy.reset()
        env.record("proxy-reset", "proxy", t, f"{n} connections")


NEMESES: dict[str, Nemesis | None] = {
    "kill-worker": kill_worker,
    "zombie-worker": zombie_worker,
    "kill-gateway": kill_gateway,
    "gateway-failpoint": gateway_failpoint,
    "kill-valkey": kill_valkey,
    "pause-valkey": pause_valkey,
    "proxy-blackhole": _proxy_fault("proxy-blackhole", "blackhole", 2, 5),
    "proxy-drop": _proxy_fault("proxy-drop", "drop", 1, 3),
    "proxy-reset": proxy_reset,
    "poison": None,  # workload, see chaos_client.Plan
}
PROXY_NEMESES = {"proxy-blackhole", "proxy-drop", "proxy-reset"}


def parse(spec: str) -> list[str]:
    names = list(NEMESES) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in NEMESES]
    if unknown:
        raise SystemExit(f"unknown nemesis {unknown}; choose from {', '.join(NEMESES)} or all")
    return names


async def run_all(env: Env, names: list[str]) -> None:
    """Run the selected nemeses concurrently until ``env.stop``; each has its own seeded RNG."""
    async with asyncio.TaskGroup() as tg:
        for name in names:
            nemesis = NEMESES[name]
            if nemesis is not None:
                tg.create_task(nemesis(env, random.Random(f"{env.seed}:{name}")))
