"""The checker's part for the cancel workload (``--workload cancel``, chaos_app ``comp``, the client's
acts in chaos_cancel): a cancel the system answered ``cancelled`` or ``cancelling`` ends the parent
``cancelled`` (but for the documented race: a handler that returns before the cancel reaches it
ends ``succeeded``, architecture section 8: told by the parent's timeline, the cancel requested
after the claim of the run that returned), a parent nobody cancelled never ends ``cancelled``, a
handler that entered ``except Cancelled`` finished its compensation (the ``undo`` child
succeeded, the ``undo`` step journaled) however often it was suspended, killed or replayed, and no
compensation ran for a parent that succeeded."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import msgspec

from reliq.store.record import TERMINAL

from .chaos_cancel import Act
from .chaos_check_tree import Effects, effects_explained
from .chaos_client import Plan
from .chaos_snapshot import KeyState, Snapshot

CANCEL_VIOLATIONS = (
    "cancelled parent succeeded",
    "cancelled without a cancel",
    "compensation incomplete",
    "compensation ran for an uncancelled parent",
    "ran after its cancel ended it",
)
ROLES = ("hold", "nap", "undo")  # the children's handlers (and witness keys "<parent key>/<role>")
CLAIMS = ("claimed", "reclaimed")


def _witness(path: Path) -> tuple[Counter[str], dict[str, list[float]], dict[str, set[str]]]:
    """Compensation runs per parent key, execution times per key, ids that ran under each key."""
    db = sqlite3.connect(path)
    try:
        comp = Counter(k for (k,) in db.execute("SELECT key FROM compensations"))
        rows = list(db.execute("SELECT key, inv_id, ts FROM executions"))
    finally:
        db.close()
    times: dict[str, list[float]] = defaultdict(list)
    ran: dict[str, set[str]] = defaultdict(set)
    for key, inv, ts in rows:
        times[key].append(float(ts))
        ran[key].add(inv)
    return comp, times, ran


def _moment(events: list[tuple[int, str]]) -> str:
    """Where the first cancel request found the parent (its timeline's event before it)."""
    before = "accepted"
    for _, ev in events:
        if ev == "cancel-requested":
            return {
                "claimed": "while running",
                "reclaimed": "while running",
                "suspended": "while suspended",
            }.get(before, "while queued with a journal")
        if ev not in ("renewed", "step"):
            before = ev
    return "before start" if any(ev == "cancelled" for _, ev in events) else "at an unknown moment"


def _lost_race(events: list[tuple[int, str]]) -> bool:
    """A parent that succeeded although a cancel was requested: allowed only when the request
    came after the claim of the run that returned (it cannot have been claimed to compensate)."""
    asked = next((at for at, ev in events if ev == "cancel-requested"), None)
    claims = [at for at, ev in events if ev in CLAIMS]
    return asked is not None and bool(claims) and asked >= claims[-1]


def check_cancel(
    plan: Plan,
    snap: Snapshot,
    witness: Path,
    ef: dict[str, Effects],
    unjournaled: set[str],
    dead_workers: set[int],
    acts: list[Act],
    bad: dict[str, list[str]],
) -> dict[str, int]:
    """File the cancel workload's violations in ``bad``; returns its counters."""
    comp, times, ran = _witness(witness)
    parents = {s.key: s for s in snap.keys}
    kids: dict[str, dict[str, KeyState]] = defaultdict(dict)
    tombstones: Counter[str] = Counter()
    for c in snap.children:
        parent = c.key.partition("/")[0]
        if c.state is None:  # the parent linked it, nobody registered it, no cancel walk reached it
            bad["children not as called"].append(f"{c.key} {c.id}: linked, never registered")
            continue
        if c.state == "cancelled" and not c.handler and c.parent is None:
            tombstones[parent] += 1  # the cancel walk came before its registration: it never runs
            continue
        if c.handler in kids[parent] or c.handler not in ROLES:
            bad["children not as called"].append(f"{c.key}: a second or unknown {c.handler!r} child")
        kids[parent][c.handler] = c
    cancels: dict[str, list[Act]] = defaultdict(list)
    for a in acts:
        if a.what == "cancel":
            cancels[a.key].append(a)
    counts: Counter[str] = Counter()
    rerun = dup_exec = 0
    for key in plan.keys:
        st = parents.get(key)
        if st is None or st.state is None:
            continue  # lost or never acked: the main checker counts it
        mine, tried = kids[key], cancels[key]
        asked = any(a.outcome in ("cancelled", "cancelling") for a in tried)
        # an error may have landed; so may a 'terminal': redis-py re-sends a script whose reply
        # was lost, and the re-send finds the cancel its first send made (the timeline says when)
        maybe = asked or any(a.outcome == "error" or _own_terminal(a, st.events) for a in tried)
        entered = comp[key]
        counts[f"parents {st.state}"] += 1
        counts["children tombstoned (the cancel walk came before their registration)"] += tombstones[key]
        if tombstones[key] and st.state != "cancelled":
            bad["children not as called"].append(f"{key}: {tombstones[key]} tombstoned children, {st.state}")
        counts["compensation runs"] += entered
        if st.state == "succeeded":
            if asked and _lost_race(st.events):
                counts["cancels that lost the race to a return (documented)"] += 1
            elif asked:
                bad["cancelled parent succeeded"].append(f"{key} {st.id}: {_answers(tried)}")
            if entered or st.undo is not None or "undo" in mine or ef.get(f"{key}:undo"):
                bad["compensation ran for an uncancelled parent"].append(f"{key} {st.id}")
            want = {"effect": st.journaled, "children": [_nonce(mine.get("hold")), _nonce(mine.get("nap"))]}
            if st.result != want:
                bad["wrong tree result"].append(f"{key}: {st.result} != {want}")
        elif st.state == "cancelled":
            if not maybe:
                bad["cancelled without a cancel"].append(f"{key} {st.id}: {_answers(tried)}")
            undo = mine.get("undo")
            moment = _moment(st.events)
            counts[f"cancelled {moment}, {'compensated' if entered else 'no compensation'}"] += 1
            if entered:
                if st.undo is None or undo is None or undo.state != "succeeded":
                    got = "none" if undo is None else undo.state
                    bad["compensation incomplete"].append(
                        f"{key} {st.id}: undo step {st.undo}, undo child {got}"
                    )
                if any(ev == "suspended" for _, ev in _after_cancel(st.events)):
                    counts["compensations that suspended"] += 1
            elif st.undo is not None or undo is not None:
                bad["compensation incomplete"].append(f"{key} {st.id}: an undo without a compensations row")
            ended = [a.t1 for a in tried if a.outcome == "cancelled"]
            if ended and any(t > min(ended) for t in times.get(key, [])):
                bad["ran after its cancel ended it"].append(f"{key} {st.id}")
        for role, c in mine.items():
            ck = f"{key}/{role}"
            if c.parent != st.id:
                bad["children not as called"].append(f"{ck}: parent {c.parent}, not {st.id}")
            if ran.get(ck, set()) - {c.id}:
                bad["children not as called"].append(f"{ck}: ran as {sorted(ran[ck])}, linked {c.id}")
            if c.state not in TERMINAL:
                bad["stuck"].append(f"child {ck} {c.state}")
            elif c.state == "failed" or (c.state == "cancelled" and (role == "undo" or not maybe)):
                bad["unexpected parked"].append(f"child {ck} {c.state} {c.reason}")
            if len(times.get(ck, [])) > c.deliveries:
                bad["executions without a claim"].append(f"{ck} ran {len(times[ck])}x, {c.deliveries} claims")
            dup_exec += max(0, len(times.get(ck, [])) - 1 - c.suspensions)
            rerun += effects_explained(ck, c, ef.get(ck, []), unjournaled, dead_workers, bad)
        # the undo step's effect rows, against its journaled nonce
        undone = msgspec.structs.replace(st, journaled=st.undo, state="succeeded" if st.undo else None)
        rerun += effects_explained(
            f"{key}:undo", undone, ef.get(f"{key}:undo", []), unjournaled, dead_workers, bad
        )
        counts["undo effects"] += len(ef.get(f"{key}:undo", []))
    if snap.suspended:
        bad["stuck"].append(f"{snap.suspended} ids left in the suspended set")
    if snap.outbox:
        bad["stuck"].append(f"{snap.outbox} relay messages left in the outbox")
    answers = Counter(
        f"{'second' if a.second else 'first'} cancels answered {a.outcome}"
        for a in acts
        if a.what == "cancel"
    )
    return {
        "children": len(snap.children),
        "suspensions (parents + children)": sum(s.suspensions for s in [*snap.keys, *snap.children]),
        "parents the client cancelled": len({a.key for a in acts if a.what == "cancel"}),
        **{k: v for k, v in sorted(answers.items()) if not k.endswith(("error", "unknown-id"))},
        "cancel errors (retried)": sum(1 for a in acts if a.what == "cancel" and a.outcome == "error"),
        "resolve attempts": sum(1 for a in acts if a.what == "resolve"),
        "resolve errors (retried)": sum(1 for a in acts if a.what == "resolve" and a.outcome == "error"),
        **dict(sorted(counts.items())),
        "effects re-run (died before journal)": rerun,
        "duplicate executions": dup_exec,
    }


def _own_terminal(a: Act, events: list[tuple[int, str]]) -> bool:
    """A cancel answered 'terminal' after it ran on (a re-send): the record was cancelled
    between the call's start and its answer."""
    return a.outcome == "terminal" and any(
        ev == "cancelled" and a.t0 * 1000 <= at <= a.t1 * 1000 for at, ev in events
    )


def _after_cancel(events: list[tuple[int, str]]) -> list[tuple[int, str]]:
    i = next((i for i, (_, ev) in enumerate(events) if ev == "cancel-requested"), len(events))
    return events[i + 1 :]


def _nonce(c: KeyState | None) -> str | None:
    return c.journaled if c is not None else None


def _answers(tried: list[Act]) -> str:
    return ",".join(f"{a.outcome}{'(2nd)' if a.second else ''}@{a.t1:.3f}" for a in tried) or "no cancel"
