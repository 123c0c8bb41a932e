"""The checker's part for the tree workload (``--workload tree``, chaos_app ``tree``): every
parent called exactly its three children, each child ran its effect once and its outcome reached
the parent once (the parent's result holds each child's journaled nonce, in call order, and the
promise value the client resolved), nothing is left suspended or in the relay's outbox, and the
promise was resolved once: the client's deliberate second resolve was refused as settled."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

from reliq.store.record import TERMINAL

from .chaos_app import promise_value
from .chaos_client import Plan
from .chaos_promise import ANSWERED, Resolution
from .chaos_snapshot import KeyState, Snapshot

CHILDREN = 3  # leaf and nap through asyncio.gather, then leaf
TREE_VIOLATIONS = (
    "wrong tree result",
    "children not as called",
    "promise not resolved",
    "second resolve not refused as settled",
)
Effects = list[tuple[str, int, float]]  # (nonce, worker pid, ts) of one key's effect rows


def effects_explained(
    key: str,
    st: KeyState,
    rows: Effects,
    unjournaled: set[str],
    dead_workers: set[int],
    bad: dict[str, list[str]],
) -> int:
    """Check one key's effect rows against its journaled nonce; returns the re-runs explained by
    a failed journal write or a dead worker, and files the rest as violations in ``bad``."""
    journaled_at = next((ts for n, _, ts in rows if n == st.journaled), None)
    if st.state == "succeeded" and journaled_at is None:
        bad["journal mismatch"].append(key)
    rerun = 0
    for nonce, pid, ts in rows:
        if nonce == st.journaled:
            continue
        # explained: its ctx.step raised (lease lost, Redis down), or its worker died and
        # the journaled effect came later (a rerun after the journal would come after it)
        died_first = pid in dead_workers and (journaled_at is None or ts < journaled_at)
        if nonce in unjournaled or died_first:
            rerun += 1
        else:
            bad["duplicated effects"].append(f"{key} nonce {nonce} pid {pid}")
    return rerun


def _runs(witness: Path) -> tuple[dict[str, set[str]], Counter[str]]:
    """key -> the invocation ids that ran under it (a child created twice shows two), and how
    many executions each key had."""
    db = sqlite3.connect(witness)
    try:
        rows = list(db.execute("SELECT key, inv_id FROM executions"))
    finally:
        db.close()
    ids: dict[str, set[str]] = defaultdict(set)
    for key, inv in rows:
        ids[key].add(inv)
    return ids, Counter(key for key, _ in rows)


def check_tree(
    plan: Plan,
    acked: set[str],
    snap: Snapshot,
    witness: Path,
    ef: dict[str, Effects],
    unjournaled: set[str],
    dead_workers: set[int],
    resolutions: list[Resolution],
    bad: dict[str, list[str]],
) -> dict[str, int]:
    """File the tree workload's violations in ``bad``; returns its counters."""
    ran, runs = _runs(witness)
    parents = {s.key: s for s in snap.keys}
    children = {c.key: c for c in snap.children}
    positions: dict[str, list[int]] = defaultdict(list)  # parent key -> positions that ran
    for k in ran:
        parent, _, at = k.partition("/")
        if at.isdigit():
            positions[parent].append(int(at))
    rerun = dup_exec = 0
    for key in plan.keys:
        st = parents.get(key)
        if st is None or st.state is None:
            continue  # lost or never acked: the main checker counts it
        mine = [children.get(f"{key}/{i}") for i in range(len(st.children))]
        if len(st.children) != CHILDREN and st.state == "succeeded":
            bad["children not as called"].append(f"{key}: {len(st.children)} children")
        for i, c in enumerate(mine):
            ck = f"{key}/{i}"
            if c is None or c.state is None:
                bad["children not as called"].append(f"{ck}: no record for {st.children[i]}")
                continue
            if ran.get(ck, set()) - {c.id}:  # another id ran under this position
                bad["children not as called"].append(f"{ck}: ran as {sorted(ran[ck])}, linked {c.id}")
            if c.parent != st.id:
                bad["children not as called"].append(f"{ck}: parent {c.parent}, not {st.id}")
            if c.state not in TERMINAL:
                bad["stuck"].append(f"child {ck} {c.state}")
            elif c.state != "succeeded":
                bad["unexpected parked"].append(f"child {ck} {c.state} {c.reason}")
            if runs.get(ck, 0) > c.deliveries:
                bad["executions without a claim"].append(f"{ck} ran {runs[ck]}x, {c.deliveries} claims")
            dup_exec += max(0, runs.get(ck, 0) - 1 - c.suspensions)
            rerun += effects_explained(ck, c, ef.get(ck, []), unjournaled, dead_workers, bad)
        for pos in positions[key]:
            if pos >= len(st.children):
                bad["children not as called"].append(f"{key}/{pos}: ran but not linked to its parent")
        if st.state == "succeeded":
            want = {
                "effect": st.journaled,
                "children": [c.journaled if c is not None else None for c in mine],
                "promise": promise_value(key),
            }
            if st.result != want:
                bad["wrong tree result"].append(f"{key}: {st.result} != {want}")
    if snap.suspended:
        bad["stuck"].append(f"{snap.suspended} ids left in the suspended set")
    if snap.outbox:
        bad["stuck"].append(f"{snap.outbox} relay messages left in the outbox")
    firsts: dict[str, list[Resolution]] = defaultdict(list)
    seconds: dict[str, list[Resolution]] = defaultdict(list)
    for r in resolutions:
        (seconds if r.second else firsts)[r.key].append(r)
    for key in sorted(acked):
        if not any(r.outcome in ANSWERED for r in firsts[key]):
            bad["promise not resolved"].append(key)
        answered = [r for r in seconds[key] if r.outcome in ANSWERED]
        if any(r.outcome != "settled" for r in answered):
            bad["second resolve not refused as settled"].append(
                f"{key}: {answered[-1].outcome} {answered[-1].detail}"
            )
    out = Counter(r.outcome for r in resolutions if not r.second)
    return {
        "children": len(snap.children),
        "child executions": sum(n for k, n in runs.items() if "/" in k),
        "suspensions (parents + children)": sum(s.suspensions for s in [*snap.keys, *snap.children]),
        "resolve attempts": len(resolutions),
        "resolve errors (retried)": sum(1 for r in resolutions if r.outcome == "error"),
        "first resolves accepted (resumed / stored)": out["resumed"] + out["stored"],
        "first resolves refused as settled (a retry whose attempt landed unseen)": out["settled"],
        "second resolves refused as settled": sum(
            1 for r in resolutions if r.second and r.outcome == "settled"
        ),
        "effects re-run (died before journal)": rerun,
        "duplicate executions": dup_exec,
    }
