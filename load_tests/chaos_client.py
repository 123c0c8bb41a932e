"""The chaos client: N invocations, each with its own Idempotency-Key, sent with ``POST /send``
through the gateways and retried with the same key until a 2xx (timeouts, 5xx, 429 and
connection errors mean "not confirmed"). Every attempt is one line of history.jsonl."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
import msgspec

from .chaos_cancel import DELAYED, chosen

Outcome = Literal["ok", "failed", "unknown"]
Kind = Literal["ok", "fail", "crash"]
Workload = Literal["work", "tree", "flow", "cancel"]
ACCOUNTS = 20  # --workload flow: the keys share this many accounts (concurrency_key, limit 1)


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP attempt: ``ok`` (2xx: placed), ``failed`` (a definite 4xx: nothing placed) or
    ``unknown`` (may or may not have been placed)."""

    key: str
    n: int
    gateway: int
    t0: float
    t1: float
    outcome: Outcome
    status: int | None = None
    id: str | None = None
    detail: str = ""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """The workload: which keys exist and which of them are poison. ``workload``: each key is one
    ``work`` invocation, one ``tree`` (a parent with three children and a promise), one
    ``keyed`` invocation (flow) or one ``comp`` parent (cancel: chaos_cancel)."""

    keys: list[str]
    kinds: dict[str, Kind]
    workload: Workload = "work"

    @classmethod
    def make(cls, n: int, run: str, poison: bool, workload: Workload = "work") -> Plan:
        keys = [f"{run}-{i:06d}" for i in range(n)]
        kinds: dict[str, Kind] = {}
        for i, k in enumerate(keys):
            kinds[k] = "ok"
            if poison and i % 100 == 37:
                kinds[k] = "fail"  # 1 % always raise -> parked (attempts exhausted)
        if poison and n > 1:
            kinds[keys[n // 2]] = "crash"  # kills its worker -> parked (crash loop)
        return cls(keys=keys, kinds=kinds, workload=workload)


RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class Load:
    """Send the plan spread over ``window`` seconds with at most ``concurrency`` keys in flight;
    each key retries (jittered backoff) until acked or ``give_up_at`` (monotonic)."""

    def __init__(
        self,
        plan: Plan,
        gateway_urls: list[str],
        service: str,
        history: Path,
        *,
        seed: int,
        window: float,
        concurrency: int = 64,
        timeout: float = 5.0,
    ) -> None:
        self.plan, self.urls, self.service = plan, gateway_urls, service
        self.history = history
        self.rng = random.Random(f"{seed}:client")
        self.seed = seed
        self.window, self.concurrency, self.timeout = window, concurrency, timeout
        self.acked: dict[str, str] = {}
        self.attempts = 0
        self._enc = msgspec.json.Encoder()
        self._lines: list[bytes] = []

    def _record(self, a: Attempt) -> None:
        self.attempts += 1
        self._lines.append(self._enc.encode(a) + b"\n")
        if len(self._lines) >= 500:
            self.flush()

    def flush(self) -> None:
        with open(self.history, "ab") as f:
            f.writelines(self._lines)
        self._lines.clear()

    async def run(self, give_up_at: float, on_ack: Callable[[str, str], None] | None = None) -> None:
        """Send every key; ``on_ack(key, id)`` after each key's first 2xx."""
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        t_start = time.monotonic()
        spacing = self.window / max(1, len(self.plan.keys))
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as http:

            async def one(i: int, key: str) -> None:
                delay = t_start + i * spacing - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing: spread the load over the fault window
                async with sem:
                    await self._send(http, i, key, give_up_at)
                if on_ack is not None and key in self.acked:
                    on_ack(key, self.acked[key])

            try:
                async with asyncio.TaskGroup() as tg:
                    for i, key in enumerate(self.plan.keys):
                        tg.create_task(one(i, key))
            finally:
                self.flush()

    async def _send(self, http: httpx.AsyncClient, i: int, key: str, give_up_at: float) -> None:
        kind = self.plan.kinds[key]
        ms = 10 + (i * 7919) % 190  # 10-200 ms of simulated work, fixed per key
        if self.plan.workload == "flow":  # one account per key: i mod ACCOUNTS, one holder at a time
            handler = "keyed"
            body = msgspec.json.encode({"key": key, "account": f"acct{i % ACCOUNTS}", "ms": ms // 4})
        elif self.plan.workload == "cancel":  # some are sent delayed, to be cancelled before they start
            handler = "comp" + ("?delay=" + DELAYED if chosen(self.seed, i) == "before-start" else "")
            nap, undo = 300 + (i * 104729) % 700, 300 + (i * 7919) % 700
            body = msgspec.json.encode({"key": key, "ms": 50 + ms, "nap_ms": nap, "undo_ms": undo})
        elif self.plan.workload == "tree":
            handler = "tree"
            body = msgspec.json.encode({"key": key, "ms": ms // 4, "nap_ms": 300 + (i * 104729) % 700})
        else:
            handler = "crash" if kind == "crash" else "work"
            body = msgspec.json.encode({"key": key, "kind": "ok" if kind == "crash" else kind, "ms": ms})
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        pause = 0.05
        for n in range(1000):  # bounded: also by give_up_at
            g = (i + n) % len(self.urls)
            t0 = time.time()
            status: int | None = None
            inv: str | None = None
            detail = ""
            try:
                r = await http.post(
                    f"{self.urls[g]}/send/{self.service}/{handler}", content=body, headers=headers
                )
                status = r.status_code
                if 200 <= status < 300:
                    inv = r.json()["id"]
                    outcome: Outcome = "ok"
                else:
                    outcome = "unknown" if status in RETRYABLE else "failed"
                    detail = r.text[:200]
            except httpx.HTTPError as e:
                outcome, detail = "unknown", type(e).__name__
            self._record(
                Attempt(
                    key=key,
                    n=n,
                    gateway=g,
                    t0=t0,
                    t1=time.time(),
                    outcome=outcome,
                    status=status,
                    id=inv,
                    detail=detail,
                )
            )
            if outcome == "ok" and inv is not None:
                self.acked[key] = inv
                return
            if outcome == "failed" or time.monotonic() + pause > give_up_at:
                return
            await asyncio.sleep(pause * (0.5 + self.rng.random()))
            pause = min(pause * 2, 1.0)


def read_history(path: Path) -> list[Attempt]:
    dec = msgspec.json.Decoder(Attempt)
    if not path.exists():
        return []
    return [dec.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
