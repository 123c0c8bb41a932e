"""The checker's part for the flow workload (``--workload flow``, chaos_app ``keyed``): at most one
invocation per account at a time. An invocation holds its account's permit from its first start
(an ``executions`` row; a run killed mid-handler keeps the permit, its retry runs before the next
of the account) to the end of its completed run (a ``holds`` row); those spans of two invocations
of one account must not overlap. A worker that is paused past its lease keeps running as a
fenced zombie: its writes are refused, but its handler's span may overlap; the smoke kills."""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from pathlib import Path

FLOW_VIOLATIONS = ("two holders of one account",)


def check_flow(witness: Path, bad: dict[str, list[str]]) -> dict[str, int]:
    db = sqlite3.connect(witness)
    try:
        first = {k: float(t) for k, t in db.execute("SELECT key, MIN(ts) FROM executions GROUP BY key")}
        ends = list(db.execute("SELECT account, key, MAX(ts) FROM holds GROUP BY account, key"))
    finally:
        db.close()
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for account, key, end in ends:
        spans[account].append((first.get(key, float(end)), float(end), key))
    for account, rows in spans.items():
        rows.sort()
        for (_, end, key), (start, _, nxt) in itertools.pairwise(rows):
            if start < end:
                bad["two holders of one account"].append(f"{account}: {nxt} started before {key} ended")
    return {"accounts": len(spans), "holds checked": sum(len(r) for r in spans.values())}
