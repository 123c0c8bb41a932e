"""The cancel workload of the chaos harness (``--workload cancel``): its checker on a hand-made run
(each invariant must see what it exists to see), and the workload in miniature under worker
SIGKILLs."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from load_tests.chaos import Config, run
from load_tests.chaos_app import Witness
from load_tests.chaos_cancel import Act, Outcome
from load_tests.chaos_check import VIOLATIONS, check, table
from load_tests.chaos_check_cancel import CANCEL_VIOLATIONS
from load_tests.chaos_client import Attempt, Plan
from load_tests.chaos_snapshot import KeyState, Snapshot
from reliq.store.keys import keyed_id

KEYS = ["won", "nobody", "half", "uncalled", "late", "twice", "race"]


def _cancel(key: str, outcome: Outcome, t1: float = 0.5, second: bool = False) -> Act:
    inv = keyed_id("chaos", key)
    return Act(key=key, id=inv, what="cancel", n=0, t0=t1 - 0.1, t1=t1, outcome=outcome, second=second)


def test_the_checker_sees_each_broken_cancel(tmp_path: Path) -> None:
    """One parent per invariant: succeeded although its cancel was requested before its last
    claim; cancelled with no cancel sent; a compensation entered and not finished; a compensation
    for a parent that succeeded; a run after the cancel ended it; an undo effect made twice. The
    parent that returned before its cancel reached it (the documented race) is no violation."""
    db = tmp_path / "witness.db"
    Witness.create(db)
    plan = Plan(keys=KEYS, kinds={k: "ok" for k in KEYS}, workload="cancel")
    ids = {k: keyed_id("chaos", k) for k in KEYS}
    history = [
        Attempt(key=k, n=0, gateway=0, t0=0.0, t1=0.1, outcome="ok", status=202, id=ids[k]) for k in KEYS
    ]
    with contextlib.closing(sqlite3.connect(db)) as c, c:
        c.executemany(
            "INSERT INTO executions VALUES (?,?,1,1,'comp',?)",
            [(k, ids[k], 0.2) for k in KEYS] + [("late", ids["late"], 2.0)],  # after 'cancelled' at 1.0
        )
        c.executemany(
            "INSERT INTO effects VALUES (?,?,?,?,1,?)",
            [(k, ids[k], "effect", f"e-{k}", 0.3) for k in KEYS]
            + [(f"{k}/undo", f"{ids[k]}.u", "effect", f"x-{k}", 0.7) for k in ("half", "twice")]
            + [
                ("twice:undo", ids["twice"], "undo", "u1", 0.8),
                ("twice:undo", ids["twice"], "undo", "u2", 0.9),
            ],
        )
        c.executemany(
            "INSERT INTO compensations VALUES (?,?,1,0.6)",
            [(k, ids[k]) for k in ("half", "uncalled", "twice")],
        )
    requested_then_claimed = [
        (100, "claimed"),
        (200, "cancel-requested"),
        (300, "claimed"),
        (400, "succeeded"),
    ]
    claimed_then_requested = [
        (100, "claimed"),
        (300, "claimed"),
        (350, "cancel-requested"),
        (360, "succeeded"),
    ]
    compensated = [(100, "claimed"), (150, "suspended"), (200, "cancel-requested"), (250, "suspended")]

    def parent(
        key: str, state: str, undo: str | None = None, events: list[tuple[int, str]] | None = None
    ) -> KeyState:
        result = {"effect": f"e-{key}", "children": [None, None]} if state == "succeeded" else None
        return KeyState(
            key=key,
            id=ids[key],
            state=state,
            journaled=f"e-{key}",
            deliveries=3,
            result=result,
            undo=undo,
            events=events or [],
        )

    def undone(key: str) -> KeyState:
        return KeyState(
            key=f"{key}/0",
            id=f"{ids[key]}.u",
            state="succeeded",
            handler="undo",
            parent=ids[key],
            journaled=f"x-{key}",
        )

    snap = Snapshot(
        keys=[
            parent("won", "succeeded", events=requested_then_claimed),
            parent("nobody", "cancelled"),
            parent("half", "cancelled", events=compensated),  # entered, no undo step
            parent("uncalled", "succeeded"),
            parent("late", "cancelled"),
            parent("twice", "cancelled", undo="u1", events=compensated),
            parent("race", "succeeded", events=claimed_then_requested),
        ],
        parked=[],
        pending=[],
        live_consumers=[],
        lost_entries=0,
        stream_len=0,
        delayed=0,
        children=[undone("half"), undone("twice")],
    )
    acts = [
        _cancel("won", "cancelling"),
        _cancel("half", "cancelling"),
        _cancel("late", "cancelled", t1=1.0),
        _cancel("twice", "cancelling"),
        _cancel("twice", "terminal", t1=3.0, second=True),
        _cancel("race", "cancelling"),
    ]
    report = check("chaos", plan, history, [], [], snap, db, visibility=3.0, acts=acts)
    print(table(report))
    assert set(CANCEL_VIOLATIONS) <= set(report.violations) == set(VIOLATIONS)
    assert {k: v for k, v in report.violations.items() if v} == {
        "cancelled parent succeeded": 1,  # won
        "cancelled without a cancel": 1,  # nobody
        "compensation incomplete": 1,  # half
        "compensation ran for an uncancelled parent": 1,  # uncalled
        "ran after its cancel ended it": 1,  # late
        "duplicated effects": 1,  # twice: u2 by a live worker
    }
    assert report.examples["cancelled parent succeeded"][0].startswith("won ")
    c = report.counters
    assert c["cancels that lost the race to a return (documented)"] == 1  # race
    assert c["parents cancelled"] == 4 and c["parents succeeded"] == 3
    assert c["cancelled while suspended, compensated"] == 2
    assert c["compensations that suspended"] == 2
    assert c["undo effects"] == 2 and c["second cancels answered terminal"] == 1


@pytest.mark.timeout(120)
def test_chaos_smoke_cancel_workload(tmp_path: Path) -> None:
    """``--workload cancel`` in miniature: compensating parents, half of them cancelled at random
    moments, under worker SIGKILLs."""
    cfg = Config(
        n=80,
        duration=10.0,
        nemeses=("kill-worker",),
        seed=5,
        workers=2,
        gateways=1,
        visibility=2.0,
        retry_grace=30.0,
        drain_timeout=40.0,
        results=tmp_path,
        workload="cancel",
    )
    report, workdir = run(cfg)
    print(table(report))
    assert report.ok, f"{report.violations} {report.examples} (run kept in {workdir})"
    c = report.counters
    assert c["acked"] == cfg.n and c["faults injected"] >= 1
    assert c["parents cancelled"] + c["parents succeeded"] == cfg.n
    assert c["cancelled while suspended, compensated"] >= 1 and c["compensations that suspended"] >= 1
