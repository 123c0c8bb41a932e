"""The checker: compare the client's history, the witness database and the snapshot of Valkey
taken once the system has drained (chaos_snapshot). ``check`` is a pure function of files in
the run directory, so a kept run can be checked again offline
(``python -m load_tests.chaos --check DIR``)."""

from __future__ import annotations

import bisect
import sqlite3
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import msgspec

from reliq.store.keys import keyed_id
from reliq.store.record import TERMINAL

from .chaos_cancel import Act
from .chaos_check_cancel import CANCEL_VIOLATIONS, check_cancel
from .chaos_check_flow import FLOW_VIOLATIONS, check_flow
from .chaos_check_tree import TREE_VIOLATIONS, check_tree, effects_explained
from .chaos_client import Attempt, Plan
from .chaos_nemesis import Fault
from .chaos_proc import ProcEvent
from .chaos_promise import Resolution
from .chaos_snapshot import Snapshot

VIOLATIONS = (
    "lost",
    "duplicated effects",
    "conflicting ids",
    "stuck",
    "unexpected parked",
    "poison not parked",
    "journal mismatch",
    "executions without a claim",
    "never acked",
    "rejected (4xx)",
    "lost entries (reliq:{S}:lost)",
    "unexpected valkey exits",
    "tracebacks in worker/gateway logs",
    *TREE_VIOLATIONS,
    *FLOW_VIOLATIONS,
    *CANCEL_VIOLATIONS,
)


class Recovery(msgspec.Struct, frozen=True, kw_only=True):
    """Time from healing a fault to the first ack / first execution after it (seconds)."""

    faults: int
    ack_median: float | None
    ack_max: float | None
    exec_median: float | None
    exec_max: float | None


class Report(msgspec.Struct, kw_only=True):
    counters: dict[str, int]
    violations: dict[str, int]
    examples: dict[str, list[str]]
    recovery: dict[str, Recovery]

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


def read_witness(
    path: Path,
) -> tuple[list[tuple[str, int, str, float]], list[tuple[str, str, int, float]], set[str]]:
    """(executions: key, pid, kind, ts), (effects: key, nonce, pid, ts), unjournaled nonces."""
    db = sqlite3.connect(path)
    try:
        ex = [
            (r[0], int(r[1]), r[2], float(r[3]))
            for r in db.execute("SELECT key, worker_pid, kind, ts FROM executions")
        ]
        rows = db.execute("SELECT key, nonce, worker_pid, ts FROM effects")
        ef = [(r[0], r[1], int(r[2]), float(r[3])) for r in rows]
        un = {r[0] for r in db.execute("SELECT nonce FROM journal")}  # unjournaled, lease-lost
    finally:
        db.close()
    return ex, ef, un


def _lease_lost(path: Path) -> int:
    """Step bodies that ran, then found their journal write refused for a lost lease: the
    effect ran while another worker may have held the invocation (a body must not start past
    the local lease; only a pause inside a body can still make one)."""
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM journal WHERE outcome = 'lease-lost'").fetchone()[0])
    finally:
        db.close()


def _recovery(faults: list[Fault], acks: list[float], execs: list[float]) -> dict[str, Recovery]:
    acks, execs = sorted(acks), sorted(execs)

    def after(times: list[float], t: float) -> float | None:
        i = bisect.bisect_right(times, t)
        return times[i] - t if i < len(times) else None

    by: dict[str, list[Fault]] = defaultdict(list)
    for f in faults:
        by[f.nemesis].append(f)
    out: dict[str, Recovery] = {}
    for name, fs in sorted(by.items()):
        a = [x for f in fs if (x := after(acks, f.heal)) is not None]
        e = [x for f in fs if (x := after(execs, f.heal)) is not None]
        out[name] = Recovery(
            faults=len(fs),
            ack_median=statistics.median(a) if a else None,
            ack_max=max(a) if a else None,
            exec_median=statistics.median(e) if e else None,
            exec_max=max(e) if e else None,
        )
    return out


def check(
    service: str,
    plan: Plan,
    history: list[Attempt],
    faults: list[Fault],
    procs: list[ProcEvent],
    snap: Snapshot,
    witness: Path,
    visibility: float,
    resolutions: list[Resolution] | None = None,
    logs: Path | None = None,
    acts: list[Act] | None = None,
) -> Report:
    executions, effects, unjournaled = read_witness(witness)
    ex: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    for key, pid, kind, ts in executions:
        ex[key].append((pid, kind, ts))
    ef: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for key, nonce, pid, ts in effects:
        ef[key].append((nonce, pid, ts))
    state = {s.key: s for s in snap.keys}
    ids: dict[str, set[str]] = defaultdict(set)
    outcomes = Counter(a.outcome for a in history)
    for a in history:
        if a.outcome == "ok" and a.id is not None:
            ids[a.key].add(a.id)
    acked = set(ids)
    dead_workers = {e.pid for e in procs if e.role == "worker" and e.event == "exit"}
    crash_pids = {pid for rows in ex.values() for pid, kind, _ in rows if kind == "crash"}
    bad: dict[str, list[str]] = {name: [] for name in VIOLATIONS}
    rerun = 0
    dup_exec = 0
    # the cancel workload: a parent cancelled before it started never runs (chaos_check_cancel
    # checks that a cancel of the client's did it)
    ends = ("succeeded", "cancelled") if plan.workload == "cancel" else ("succeeded",)
    for key in plan.keys:
        kind, st = plan.kinds[key], state.get(key)
        if key in acked:
            if len(ids[key]) > 1 or ids[key] != {keyed_id(service, key)}:
                bad["conflicting ids"].append(key)
            if st is None or st.state is None or not (ex.get(key) or st.state in ends[1:]):
                bad["lost"].append(key)
            elif st.state not in TERMINAL:
                bad["stuck"].append(key)
        if st is None or st.state is None:
            continue
        if len(ex.get(key, [])) > st.deliveries:  # every run needs its own claim (epoch bump)
            bad["executions without a claim"].append(f"{key} ran {len(ex[key])}x, {st.deliveries} claims")
        if kind == "ok":
            dup_exec += max(0, len(ex.get(key, [])) - 1 - st.suspensions)
            if st.state in TERMINAL and st.state not in ends:
                bad["unexpected parked"].append(f"{key} {st.state} {st.reason}")
            rerun += effects_explained(key, st, ef.get(key, []), unjournaled, dead_workers, bad)
    poison_ids = {state[k].id for k in plan.keys if plan.kinds[k] != "ok" and state[k].state is not None}
    parked = set(snap.parked)
    bad["poison not parked"] += sorted(poison_ids - parked)
    bad["unexpected parked"] += sorted(parked - poison_ids)
    live = set(snap.live_consumers)
    for p in snap.pending:
        if p.idle_ms > 3 * visibility * 1000 or p.consumer not in live:
            bad["stuck"].append(f"entry {p.entry} of {p.consumer} idle {p.idle_ms} ms")
    bad["never acked"] = [k for k in plan.keys if k not in acked]
    bad["rejected (4xx)"] = sorted({a.key for a in history if a.outcome == "failed"})
    bad["lost entries (reliq:{S}:lost)"] = [str(snap.lost_entries)] if snap.lost_entries else []
    unexpected_exits = [
        e
        for e in procs
        if e.event == "exit" and not e.expected and e.pid not in crash_pids and e.role != "valkey"
    ]
    valkey_exits = [e for e in procs if e.event == "exit" and not e.expected and e.role == "valkey"]
    bad["unexpected valkey exits"] = [str(e.pid) for e in valkey_exits]
    bad["tracebacks in worker/gateway logs"] = _tracebacks(logs) if logs is not None else []
    tree_counters: dict[str, int] = {}
    if plan.workload == "tree":
        tree_counters = check_tree(
            plan, acked, snap, witness, ef, unjournaled, dead_workers, resolutions or [], bad
        )
        rerun += tree_counters.pop("effects re-run (died before journal)")
        dup_exec += tree_counters.pop("duplicate executions")
    if plan.workload == "flow":
        tree_counters = check_flow(witness, bad)
    if plan.workload == "cancel":
        tree_counters = check_cancel(plan, snap, witness, ef, unjournaled, dead_workers, acts or [], bad)
        rerun += tree_counters.pop("effects re-run (died before journal)")
        dup_exec += tree_counters.pop("duplicate executions")
    violations = {name: len(v) for name, v in bad.items()}
    counters = {
        "invocations": len(plan.keys),
        "acked": len(acked),
        "attempts": len(history),
        "attempts unknown": outcomes["unknown"],
        "executions": len(executions),
        "duplicate executions": dup_exec,
        "effects": len(effects),
        "effects re-run (died before journal)": rerun,
        "effects of a lapsed lease": _lease_lost(witness),
        "parked": len(parked),
        "poison keys": sum(1 for k in plan.keys if plan.kinds[k] != "ok"),
        "faults injected": len(faults),
        "process restarts": sum(1 for e in procs if e.event == "start")
        - len({(e.role, e.slot) for e in procs}),
        "unexpected worker/gateway exits": len(unexpected_exits),
        "gateway starts refused (Redis down)": sum(1 for e in procs if e.reason == "redis down at start"),
        **tree_counters,
    }
    acks = [a.t1 for a in history if a.outcome == "ok"]
    return Report(
        counters=counters,
        violations=violations,
        examples={k: v[:10] for k, v in bad.items() if v},
        recovery=_recovery(faults, acks, [ts for _, _, _, ts in executions]),
    )


def _tracebacks(logs: Path) -> list[str]:
    """The line before each traceback in the workers' and gateways' logs: a process of reliq
    that fails, or logs a failure, with a traceback is a bug (a fault it was built to survive
    must end in a one-line error, if any; a handler's own exception is not logged with one)."""
    found = []
    for log in sorted([*logs.glob("worker-*.log"), *logs.glob("gateway-*.log")]):
        before = ""
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Traceback (most recent call last)"):
                found.append(f"{log.name}: {before[:200]}")
            before = line
    return found


def table(report: Report) -> str:
    lines = ["| counter | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.counters.items()]
    lines += [f"| **{k}** (must be 0) | {v}{'  FAIL' if v else ''} |" for k, v in report.violations.items()]
    if report.recovery:
        lines += [
            "",
            "| nemesis | faults | first ack after heal (median / max s) | first execution after heal |",
            "|---|---|---|---|",
        ]
        for name, r in report.recovery.items():
            ack = f"{_s(r.ack_median)} / {_s(r.ack_max)}"
            lines.append(f"| {name} | {r.faults} | {ack} | {_s(r.exec_median)} / {_s(r.exec_max)} |")
    return "\n".join(lines)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
