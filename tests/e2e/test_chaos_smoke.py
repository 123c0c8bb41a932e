"""The chaos harness in miniature (the long run is ``make chaos``): real Valkey, gateway and worker
processes; workers and Valkey SIGKILLed under load; poison jobs. The checker must count zero
lost invocations, zero duplicated effects, zero conflicting ids, nothing stuck, and exactly the
poison set parked."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from load_tests.chaos import Config, run
from load_tests.chaos_app import Witness
from load_tests.chaos_check import VIOLATIONS, check, table
from load_tests.chaos_check_flow import check_flow
from load_tests.chaos_client import Attempt, Plan
from load_tests.chaos_proc import ProcEvent
from load_tests.chaos_promise import Resolution
from load_tests.chaos_snapshot import KeyState, Snapshot
from reliq.store.keys import keyed_id


@pytest.mark.timeout(120)
def test_chaos_smoke_kill_worker_kill_valkey_poison(tmp_path: Path) -> None:
    cfg = Config(
        n=600,
        duration=25.0,
        nemeses=("kill-worker", "kill-valkey", "poison"),
        seed=7,
        workers=2,
        gateways=1,
        visibility=2.0,
        retry_grace=30.0,
        drain_timeout=40.0,
        results=tmp_path,
    )
    report, workdir = run(cfg)
    print(table(report))
    assert set(report.violations) == set(VIOLATIONS)
    assert report.ok, f"{report.violations} {report.examples} (run kept in {workdir})"
    assert report.counters["acked"] == cfg.n
    assert report.counters["faults injected"] >= 4  # both nemeses fired more than once
    assert report.counters["parked"] == report.counters["poison keys"] == 7  # 6 failing + 1 crashing


@pytest.mark.timeout(90)
def test_chaos_smoke_flow_workload_one_holder_per_account(tmp_path: Path) -> None:
    cfg = Config(
        n=300,
        duration=8.0,
        nemeses=("kill-worker",),
        seed=11,
        workers=2,
        gateways=1,
        visibility=2.0,
        retry_grace=20.0,
        drain_timeout=30.0,
        results=tmp_path,
        workload="flow",
    )
    report, workdir = run(cfg)
    print(table(report))
    assert report.ok, f"{report.violations} {report.examples} (run kept in {workdir})"
    assert report.counters["acked"] == cfg.n and report.counters["holds checked"] == cfg.n
    assert report.counters["accounts"] == 20 and report.counters["faults injected"] >= 1


def test_the_flow_checker_sees_two_holders_of_one_account(tmp_path: Path) -> None:
    db = tmp_path / "witness.db"
    Witness.create(db)
    with contextlib.closing(sqlite3.connect(db)) as c, c:
        c.executemany(
            "INSERT INTO executions VALUES (?,?,?,?,?,?)",
            [
                ("a", "i-a", 1, 1, "keyed", 1.0),
                ("b", "i-b", 1, 1, "keyed", 1.5),
                ("c", "i-c", 1, 1, "keyed", 3.0),
            ],
        )
        c.executemany(
            "INSERT INTO holds VALUES (?,?,?,?)", [("x", "a", 1, 2.0), ("x", "b", 1, 2.5), ("x", "c", 1, 4.0)]
        )
    bad: dict[str, list[str]] = {"two holders of one account": []}
    assert check_flow(db, bad) == {"accounts": 1, "holds checked": 3}
    assert bad["two holders of one account"] == ["x: b started before a ended"]


def test_the_checker_counts_lost_work_and_duplicated_effects(tmp_path: Path) -> None:
    """The checker itself, on a hand-made history: it must see what it exists to see."""
    db = tmp_path / "witness.db"
    Witness.create(db)
    plan = Plan(keys=["a", "b", "c"], kinds={"a": "ok", "b": "ok", "c": "fail"})
    ids = {k: keyed_id("chaos", k) for k in plan.keys}
    history = [
        Attempt(key=k, n=0, gateway=0, t0=0.0, t1=0.1, outcome="ok", status=202, id=ids[k]) for k in plan.keys
    ]
    with contextlib.closing(sqlite3.connect(db)) as c, c:
        c.executemany(
            "INSERT INTO executions VALUES (?,?,?,?,?,?)",
            [("a", ids["a"], pid, 1, "ok", ts) for pid, ts in ((3, 0.4), (1, 0.9), (2, 1.9))]
            + [("c", ids["c"], 1, n, "fail", 1.0 + n) for n in (1, 2)],  # b never ran: lost
        )
        c.executemany(
            "INSERT INTO effects VALUES (?,?,?,?,?,?)",
            [
                ("a", ids["a"], "effect", "n0", 3, 0.5),  # its worker died before the journal: a re-run
                ("a", ids["a"], "effect", "n1", 1, 1.0),  # journaled
                ("a", ids["a"], "effect", "n2", 2, 2.0),  # after the journal, by a live worker: a bug
            ],
        )
    snap = Snapshot(
        keys=[
            KeyState(key="a", id=ids["a"], state="succeeded", journaled="n1", deliveries=3),
            KeyState(key="b", id=ids["b"], state="pending"),
            KeyState(key="c", id=ids["c"], state="failed", reason="attempts-exhausted", deliveries=2),
        ],
        parked=[ids["c"]],
        pending=[],
        live_consumers=[],
        lost_entries=0,
        stream_len=0,
        delayed=0,
    )
    died = [ProcEvent(t=0.6, role="worker", slot=0, pid=3, event="exit", returncode=-9)]
    report = check("chaos", plan, history, [], died, snap, db, visibility=3.0)
    assert {k: v for k, v in report.violations.items() if v} == {"lost": 1, "duplicated effects": 1}
    assert report.counters["effects re-run (died before journal)"] == 1
    assert report.counters["duplicate executions"] == 2


@pytest.mark.timeout(120)
def test_chaos_smoke_tree_workload(tmp_path: Path) -> None:
    """``--workload tree`` in miniature: parents with three children, a durable sleep and a
    promise the client resolves twice, under worker and Valkey SIGKILLs."""
    cfg = Config(
        n=120,
        duration=12.0,
        nemeses=("kill-worker", "kill-valkey"),
        seed=3,
        workers=2,
        gateways=1,
        visibility=2.0,
        retry_grace=30.0,
        drain_timeout=40.0,
        results=tmp_path,
        workload="tree",
    )
    report, workdir = run(cfg)
    print(table(report))
    assert report.ok, f"{report.violations} {report.examples} (run kept in {workdir})"
    c = report.counters
    assert c["acked"] == cfg.n and c["children"] == 3 * cfg.n
    assert c["second resolves refused as settled"] == cfg.n
    assert c["suspensions (parents + children)"] >= cfg.n  # every napper suspends at least
    assert c["faults injected"] >= 2


def test_the_checker_sees_a_broken_tree(tmp_path: Path) -> None:
    """The tree checks on a hand-made run: a child created twice, a parent result missing a
    child's outcome, a second resolve accepted, a parent left suspended and never resolved."""
    db = tmp_path / "witness.db"
    Witness.create(db)
    plan = Plan(keys=["p", "q"], kinds={"p": "ok", "q": "ok"}, workload="tree")
    pid, qid = keyed_id("chaos", "p"), keyed_id("chaos", "q")
    kids = [f"chaos.kid{i}" for i in range(3)]
    history = [
        Attempt(key=k, n=0, gateway=0, t0=0.0, t1=0.1, outcome="ok", status=202, id=i)
        for k, i in (("p", pid), ("q", qid))
    ]
    runs = [("p", pid, "tree"), ("q", qid, "tree"), ("p/0", "chaos.other", "leaf")]
    runs += [(f"p/{i}", kid, "leaf") for i, kid in enumerate(kids)]
    with contextlib.closing(sqlite3.connect(db)) as c, c:
        c.executemany("INSERT INTO executions VALUES (?,?,1,1,?,1.0)", runs)
        c.executemany(
            "INSERT INTO effects VALUES (?,?,'effect',?,1,1.0)",
            [("p", pid, "np"), ("q", qid, "nq")] + [(f"p/{i}", kid, f"n{i}") for i, kid in enumerate(kids)],
        )

    def kid(i: int) -> KeyState:
        return KeyState(
            key=f"p/{i}", id=kids[i], state="succeeded", journaled=f"n{i}", deliveries=2, parent=pid
        )

    result = {"effect": "np", "children": ["n0", "n0", "n2"], "promise": "approved:p"}  # n1 missing
    snap = Snapshot(
        keys=[
            KeyState(
                key="p", id=pid, state="succeeded", journaled="np", deliveries=3, result=result, children=kids
            ),
            KeyState(key="q", id=qid, state="suspended", journaled="nq", deliveries=1),
        ],
        parked=[],
        pending=[],
        live_consumers=[],
        lost_entries=0,
        stream_len=0,
        delayed=0,
        children=[kid(i) for i in range(3)],
        suspended=1,
    )
    resolutions = [
        Resolution(key="p", id=pid, n=0, t0=0.2, t1=0.3, outcome="stored"),
        Resolution(key="p", id=pid, n=1, t0=0.4, t1=0.5, outcome="stored", second=True),  # accepted twice
        Resolution(key="q", id=qid, n=0, t0=0.2, t1=0.3, outcome="error", detail="ConnectionError"),
    ]
    report = check("chaos", plan, history, [], [], snap, db, visibility=3.0, resolutions=resolutions)
    assert {k: v for k, v in report.violations.items() if v} == {
        "children not as called": 1,  # p/0 ran as two ids
        "wrong tree result": 1,
        "second resolve not refused as settled": 1,
        "promise not resolved": 1,  # q
        "stuck": 2,  # q suspended, and the suspended set not empty
    }


def test_a_gateway_refusing_to_start_without_redis_is_an_explained_exit(tmp_path: Path) -> None:
    """A gateway restarted while Valkey is down ends with its documented line and exit 1: the
    harness counts it as explained; any other exit 1 (a crash) stays unexpected."""
    import sys

    from load_tests.chaos_proc import System

    system = System(tmp_path, n_gateways=1, n_workers=0)
    slot = system.gateways[0]
    refusal = "reliq gateway: Redis at redis://127.0.0.1:1/0 is not reachable (ConnectionError: refused)"
    for line, reason in ((refusal, "redis down at start"), ("ValueError: boom", "")):
        system._spawn(slot, [sys.executable, "-c", f"import sys; sys.exit({line!r})"])
        assert slot.proc is not None and slot.proc.wait(30) == 1
        system._reap(slot)
        exit_ = system.events[-1]
        assert (exit_.event, exit_.reason, exit_.expected) == ("exit", reason, bool(reason))
